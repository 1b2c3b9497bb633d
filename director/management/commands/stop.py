"""``manage.py stop DEPLOYMENT GROUP[/ID] [--hard]``: see director.management.instance_action."""

from director.management.instance_action import command_for

Command = command_for("stop")
