"""How long the `embudo` command takes before it does anything: `--help` and the commands that
need no heavy library (scikit-learn, numpy, plotly, django-ninja), each run as a fresh process.

For each command it prints the median and slowest wall time and the median CPU time (user +
system) of several runs, and which heavy libraries the process had imported by the time Django
was set up. It runs against a throwaway SQLite database in a temporary folder, so nothing of
yours is touched; `createuser` makes a user there each run.

    python3 bench/cli_startup.py            # 7 runs each
    python3 bench/cli_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "sklearn", "plotly", "ninja", "pydantic")
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("createuser", "--help"),
    ("report", "--help"),
    ("import", "--help"),
    ("createuser", "{user}", "--role", "sales", "--password", "bench-password-1"),
)
PROBE = (
    "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'embudo.settings'); "
    "import django; django.setup(); "
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
)


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``args`` as a child process."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "EMBUDO_DATA_DIR": data}
        env.pop("EMBUDO_DATABASE_URL", None)
        subprocess.run(
            [sys.executable, "-m", "embudo", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        heavy = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        print(f"load average {os.getloadavg()[0]:.2f}; runs per command: {args.runs}")
        print(f"heavy libraries imported once Django is set up: {heavy}")
        for number, command in enumerate(COMMANDS):
            walls, cpus = [], []
            for run_number in range(args.runs):
                argv = [part.format(user=f"bench{number}-{run_number}") for part in command]
                wall, cpu = run([sys.executable, "-m", "embudo", *argv], env)
                walls.append(wall)
                cpus.append(cpu)
            print(
                f"embudo {' '.join(command):<62} wall median {statistics.median(walls):.2f} s, "
                f"max {max(walls):.2f} s; CPU median {statistics.median(cpus):.2f} s"
            )


if __name__ == "__main__":
    main()
