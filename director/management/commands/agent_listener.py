"""``manage.py agent_listener``: record agents' heartbeats and alerts (a part of ``runstack``).

Connects to the message bus given by ``OPSCONSOLE_NATS_URL`` as the health
monitor and runs until SIGTERM or Ctrl-C; see ``director.agents.listener``.
"""

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from director.agents.certs import MbusPki
from director.agents.listener import AgentListener


class Command(BaseCommand):
    help = "Record agents' heartbeats and alerts from the message bus; keep NATS's agent users."

    def add_arguments(self, parser):
        parser.add_argument(
            "--sync-interval",
            type=float,
            default=5.0,
            help="seconds between two syncs of nats-server's agent users (default 5)",
        )

    def handle(self, *args, sync_interval, **options):
        if not settings.NATS_URL:
            raise CommandError("OPSCONSOLE_NATS_URL is not set: which message bus to listen to?")
        if sync_interval <= 0:
            raise CommandError("--sync-interval must be more than 0 seconds")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        pki = MbusPki(settings.NATS_DIR).ensure()
        listener = AgentListener(
            settings.NATS_URL, pki, nats_dir=settings.NATS_DIR, sync_interval=sync_interval
        )

        async def main():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, listener.stop)
            await listener.run()

        self.stdout.write(f"agent listener on {settings.NATS_URL}")
        asyncio.run(main())
