"""``manage.py start DEPLOYMENT GROUP[/ID]``: see director.management.instance_action."""

from director.management.instance_action import command_for

Command = command_for("start")
