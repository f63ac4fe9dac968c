"""`embudo mail-in`: receive bounce messages on a local SMTP port and record them."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Receive bounce messages (DSNs and complaint reports) sent to the VERP return paths "
        "and record them: hard bounces and complaints suppress the address, soft bounces are "
        "counted. Listens on EMBUDO_MAIL_IN_HOST:EMBUDO_MAIL_IN_PORT (127.0.0.1:2525)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="Address to listen on.")
        parser.add_argument("--port", type=int, default=None, help="Port to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        from embudo.automation.mailin import controller

        host = options["host"] or settings.EMBUDO_MAIL_IN_HOST
        port = options["port"] or settings.EMBUDO_MAIL_IN_PORT
        if not 0 < port < 65536:
            raise CommandError(f"--port {port} is not a port number (1-65535)")
        server = controller(host, port)
        try:
            server.start()
        except (OSError, RuntimeError) as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error}") from None
        self.stdout.write(
            f"Receiving bounces for @{settings.EMBUDO_BOUNCE_DOMAIN} on {host}:{port} "
            "(Ctrl-C to stop)"
        )
        self.stdout.flush()
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            server.stop()
            self.stdout.write("mail-in stopped")
