"""`embudo demo`: migrate, load the demo company once, print the logins, serve with a worker."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from embudo.demo.seed import DEMO_PASSWORD, DEMO_USERS, DemoRefused, is_seeded, seed

STOP_TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = (
        "Run Embudo with a realistic demo company: migrate the database, load the demo data "
        "once, print the logins, then serve at http://127.0.0.1:8000 with a background worker. "
        "Ctrl-C or SIGTERM stops both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
        parser.add_argument("--no-seed", action="store_true", help="Do not load the demo company.")
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="Migrate and load the demo company, then exit without serving.",
        )
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            default=None,
            metavar="YYYY-MM-DD",
            help="The demo's 'today' (default: today): its year of history ends the day before.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["no_seed"] and options["seed_only"]:
            raise CommandError("--no-seed and --seed-only contradict each other; pick one")
        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_seed"]:
            self._seed(options["as_of"])
        self._print_logins(options["host"], options["port"])
        if options["seed_only"]:
            return
        # The children open their own connections; ours is no longer needed.
        connections.close_all()
        self._serve(options["host"], options["port"])

    def _seed(self, as_of: dt.date | None) -> None:
        def progress(step: str) -> None:
            self.stdout.write(f"  loading {step}…")
            self.stdout.flush()

        try:
            report = seed(as_of=as_of, progress=progress)
        except DemoRefused as refused:
            raise CommandError(str(refused)) from None
        if report.loaded:
            summary = ", ".join(f"{count:,} {name}" for name, count in report.counts.items())
            self.stdout.write(f"Loaded the demo company in {report.seconds:.1f} s: {summary}.")
        else:
            self.stdout.write("The demo company is already loaded.")

    def _print_logins(self, host: str, port: int) -> None:
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.stdout.write("")
        if not is_seeded():
            self.stdout.write(
                f"Open http://{shown_host}:{port}/ — the demo company is not loaded, so log in "
                "as a user made with `embudo createuser NAME --role admin`."
            )
            self.stdout.write("")
            return
        self.stdout.write(f"Open http://{shown_host}:{port}/ and log in as:")
        self.stdout.write(f"  admin / {DEMO_PASSWORD}   (RevOps admin)")
        for role, label in (
            ("marketing", "marketing"),
            ("sales", "sales reps"),
            ("sales_manager", "sales manager"),
        ):
            names = ", ".join(u.username for u in DEMO_USERS if u.role == role)
            self.stdout.write(f"  {label}: {names}")
        self.stdout.write(f"Every demo user's password is {DEMO_PASSWORD!r}.")
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.stdout.write(
                "Other machines reach it by a name or address that EMBUDO_ALLOWED_HOSTS must "
                "list (e.g. EMBUDO_ALLOWED_HOSTS=crm.example.com,192.0.2.10)."
            )
        self.stdout.write("")
        self.stdout.flush()

    def _serve(self, host: str, port: int) -> None:
        embudo = [sys.executable, "-m", "embudo"]
        # Each child in its own session: a terminal's Ctrl-C reaches only this process, which
        # then stops each child once (a second signal would make the worker abandon its task).
        children = {
            "server": subprocess.Popen(
                [*embudo, "serve", "--host", host, "--port", str(port)], start_new_session=True
            ),
            "worker": subprocess.Popen([*embudo, "worker"], start_new_session=True),
        }
        stopping: list[int] = []

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            stopping.append(signum)

        previous = {
            sig: signal.signal(sig, request_stop)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        failed = ""
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        failed = f"the {name} stopped unexpectedly (exit code {child.returncode})"
                        break
                if failed:
                    break
                time.sleep(0.3)
        finally:
            self._stop(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed:
            raise CommandError(failed)
        self.stdout.write("Embudo demo stopped.")

    def _stop(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.stderr.write(
                    f"The {name} did not stop in {STOP_TIMEOUT_SECONDS} s; killing it."
                )
                child.kill()
                child.wait()
