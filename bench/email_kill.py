"""A broadcast whose workers are killed with `kill -9` every few seconds until it is done: what
the SMTP sink received against what Embudo marked sent. Duplicates must be 0; a message is lost
only if a worker died in the loss window (between committing ``sending`` and writing the final
"."), which the figures show as "lost".

    python3 bench/email_kill.py          # 20,000 recipients, 2 workers, kill every 3 s
    python3 bench/email_kill.py --recipients 5000 --every 2
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The bench folder is not a package: its sibling is imported by path.
from email_send import Bench

DONE = """
from embudo.automation.models import Send
print(Send.objects.get(pk={send}).state)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--domains", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="embudo-email-kill-") as folder:
        bench = Bench(Path(folder))
        bench.setup(args.recipients, args.domains)
        bench.start_sink()
        try:
            send, _freeze = bench.start_send("kill bench")
            began = time.perf_counter()
            workers = [bench.worker() for _n in range(args.workers)]
            kills = 0
            while True:
                time.sleep(args.every)
                if bench.shell(DONE.format(send=send)) == "done":
                    break
                victim = chance.randrange(len(workers))
                os.kill(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = bench.worker()
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
            wall = time.perf_counter() - began
            report = bench.report(send)
            received = bench.stop_sink()
        finally:
            if bench.sink is not None and bench.sink.poll() is None:
                bench.stop_sink()
    marked = [e.lower() for e in report["emails"]]
    duplicates = sum(1 for e in marked if received.get(e, 0) > 1)
    lost = sum(1 for e in marked if received.get(e, 0) == 0)
    unmarked = len(set(received) - set(marked))
    print(
        f"{args.recipients:,} recipients, {args.workers} workers, {kills} kill -9 "
        f"(every {args.every:g} s), {wall:.0f} s: states {report['states']}; "
        f"sink received {sum(received.values()):,}; duplicates {duplicates}; "
        f"lost (in the loss window) {lost}; received but not marked sent {unmarked}"
    )


if __name__ == "__main__":
    main()
