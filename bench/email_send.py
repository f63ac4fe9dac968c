"""Speed of an e-mail broadcast: recipients frozen at start, then delivered by one and by two
`embudo worker` processes to a local SMTP sink (aiosmtpd on 127.0.0.1, a process of its own),
each message claimed, handed over up to its final dot, marked sending, then sent.

It migrates a throwaway data folder (SQLite by default; EMBUDO_DATABASE_URL for PostgreSQL),
creates the contacts, a static list and a template through Embudo's own code, and for each
worker count starts a fresh send and times it. Prints messages/s (first claim to last sent),
worker CPU seconds per message, the time to freeze the recipients, and what the sink counted
(duplicates must be 0).

    python3 bench/email_send.py                          # 100,000 recipients, 1 then 2 workers
    python3 bench/email_send.py --recipients 20000 --workers 2
    python3 bench/email_send.py sink --port 2525 --out counts.json   # the sink alone
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

SETUP = """
from embudo.automation import authoring
from embudo.automation.models import Brand, SubscriptionType
from embudo.crm import actions as crm
from embudo.segments import actions as segments
Brand.objects.update_or_create(pk=1, defaults=dict(name="Bench", from_email="news@bench.test",
    from_name="Bench news", postal_address="Calle Mayor 1, 28013 Madrid"))
kind = SubscriptionType.objects.create(key="news", name="News", opt_in_required=False)
# Written as the editor writes it: compiled into the brand's layout, its three links tracked.
body = ("<h1>Hi {{{{ contact.first_name|default:'there' }}}},</h1>"
    + "<p>News from {{{{ brand.name }}}}: what changed this month, and why it matters.</p>" * 12
    + '<p><a href="https://example.com/a?utm_source=news">One</a> '
    + '<a href="https://example.com/b">Two</a> <a href="https://example.com/c">Three</a></p>')
authoring.create_template(name="Bench", subscription_type=kind.pk, actor=None,
    content={{"en": {{"subject": "Hello {{{{ contact.first_name|default:'there' }}}}",
                      "preheader": "This month", "body": body}}}})
audience = segments.create_segment({{"name": "Everyone", "kind": "static"}})
for start in range(0, {recipients}, 10000):
    rows = [{{"email": f"p{{n}}@d{{n % {domains}}}.bench.test", "first_name": f"P{{n}}"}}
            for n in range(start, min(start + 10000, {recipients}))]
    made = crm.create_contacts(rows, cause="import")
    segments.add_members(audience, [c.pk for c in made])
print("ready")
"""

START = """
import time
from embudo.automation import sending
send = sending.create_send(template="Bench", segment="Everyone", name={name!r}, actor=None)
began = time.perf_counter()
sending.start_send(send, actor=None)
print(send.pk, time.perf_counter() - began)
"""

REPORT = """
import json
from django.db.models import Count, Max, Min
from embudo.automation.models import Delivery, Send
rows = Delivery.objects.filter(send_id={send})
span = rows.filter(state="sent").aggregate(first=Min("claimed_at"), last=Max("sent_at"))
print(json.dumps({{
    "state": Send.objects.get(pk={send}).state,
    "states": dict(rows.values_list("state").annotate(n=Count("id"))),
    "seconds": (span["last"] - span["first"]).total_seconds() if span["first"] else None,
    "emails": list(rows.filter(state="sent").values_list("email", flat=True)),
}}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_sink(port: int, out: Path) -> None:
    """A counting SMTP sink; writes what each recipient got to ``out`` when told to stop."""
    from aiosmtpd.controller import Controller

    received: Counter[str] = Counter()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            for address in envelope.rcpt_tos:
                received[address.lower()] += 1
            return "250 2.0.0 Accepted"

    stopping = {signal.SIGTERM, signal.SIGINT}
    # Blocked before the server's thread starts, so the signal waits for sigwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait(stopping)
    controller.stop()
    out.write_text(json.dumps(received))


class Bench:
    """A throwaway Embudo (data folder, database) and its SMTP sink."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
        if os.environ.get("EMBUDO_DATABASE_URL"):
            self.env["EMBUDO_DATABASE_URL"] = os.environ["EMBUDO_DATABASE_URL"]
        self.env.update(
            EMBUDO_DATA_DIR=str(folder / "data"),
            EMBUDO_SECRET_KEY="embudo-bench-secret-key",
            EMBUDO_EMAIL_HOST="127.0.0.1",
            EMBUDO_EMAIL_PORT=str(self.port),
            EMBUDO_EMAIL_RATE_PER_DOMAIN="100000",
            PYTHONUNBUFFERED="1",
        )
        self.sink: subprocess.Popen[bytes] | None = None
        self.counts = folder / "sink.json"

    def embudo(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "embudo", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"embudo {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str) -> str:
        return self.embudo("shell", "-c", code).strip().splitlines()[-1]

    def setup(self, recipients: int, domains: int) -> float:
        began = time.perf_counter()
        self.embudo("migrate", "-v0")
        self.shell(SETUP.format(recipients=recipients, domains=domains))
        return time.perf_counter() - began

    def start_sink(self) -> None:
        self.sink = subprocess.Popen(
            [sys.executable, __file__, "sink", "--port", str(self.port), "--out", str(self.counts)]
        )
        time.sleep(1.0)

    def stop_sink(self) -> Counter[str]:
        assert self.sink is not None
        self.sink.send_signal(signal.SIGTERM)
        self.sink.wait(timeout=60)
        return Counter(json.loads(self.counts.read_text()))

    def start_send(self, name: str) -> tuple[int, float]:
        send, seconds = self.shell(START.format(name=name)).split()
        return int(send), float(seconds)

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "embudo", "worker", "--interval", "0.2", *args],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def report(self, send: int) -> dict[str, Any]:
        return dict(json.loads(self.shell(REPORT.format(send=send))))


def wait_with_cpu(process: subprocess.Popen[bytes]) -> float:
    """Wait for a worker; its CPU seconds (user + system)."""
    _pid, _status, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return float(usage.ru_utime + usage.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "sink"])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "sink":
        run_sink(args.port, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="embudo-email-bench-") as folder:
        bench = Bench(Path(folder))
        setup = bench.setup(args.recipients, args.domains)
        print(f"setup: {args.recipients:,} contacts in a static list, {setup:.1f} s")
        bench.start_sink()
        try:
            for workers in args.workers:
                send, freeze = bench.start_send(f"bench {workers} workers")
                began = time.perf_counter()
                processes = [bench.worker("--batch") for _n in range(workers)]
                cpu = sum(wait_with_cpu(p) for p in processes)
                wall = time.perf_counter() - began
                report = bench.report(send)
                sent = report["states"].get("sent", 0)
                seconds = report["seconds"] or wall
                # The sink restarts empty for each run.
                this = bench.stop_sink()
                bench.start_sink()
                duplicates = sum(1 for e in report["emails"] if this.get(e.lower(), 0) > 1)
                lost = sum(1 for e in report["emails"] if this.get(e.lower(), 0) == 0)
                print(
                    f"{workers} worker(s): {sent:,} sent in {seconds:.1f} s "
                    f"= {sent / seconds:,.0f} messages/s "
                    f"(wall with worker start-up {wall:.1f} s); "
                    f"CPU {1000 * cpu / max(sent, 1):.2f} ms per message; "
                    f"freezing the recipients {freeze:.1f} s; send {report['state']}; "
                    f"sink: {sum(this.values()):,} received, {duplicates} duplicates, {lost} lost"
                )
        finally:
            if bench.sink is not None and bench.sink.poll() is None:
                bench.stop_sink()


if __name__ == "__main__":
    main()
