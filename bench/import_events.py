"""`embudo import events` of a year of history: rows, seconds, rate and peak memory.

Writes a CSV of N events (default 1,000,000) for 20,000 people over the past year — page views,
e-mail clicks with UTM, form submits — into a throwaway data folder, migrates it, and times the
real command in a subprocess (contacts are created by the import itself, as for a first load).

    python3 bench/import_events.py                 # 1,000,000 events
    python3 bench/import_events.py --events 100000 --format ndjson
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEOPLE = 20_000


def make_file(path: Path, events: int, fmt: str) -> None:
    rng = random.Random(7)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    start = end - dt.timedelta(days=365)
    span = int((end - start).total_seconds())
    campaigns = [("newsletter", "email", f"newsletter-{m:02d}") for m in range(1, 13)] + [
        ("google", "cpc", "brand"),
        ("linkedin", "paid_social", "abm-q2"),
    ]
    pages = [f"https://acme.test/{p}" for p in ("", "pricing", "blog/funnel", "docs", "demo")]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out) if fmt == "csv" else None
        if writer:
            writer.writerow(
                [
                    "type",
                    "occurred_at",
                    "email",
                    "url",
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                    "title",
                ]
            )
        for n in range(events):
            person = rng.randrange(PEOPLE)
            when = start + dt.timedelta(seconds=rng.randrange(span))
            kind = "page_view"
            source = medium = campaign = ""
            roll = rng.random()
            if roll < 0.08:
                kind = "email_click"
                source, medium, campaign = campaigns[rng.randrange(12)]
            elif roll < 0.10:
                source, medium, campaign = campaigns[12 + rng.randrange(2)]
            elif roll < 0.11:
                kind = "form_submit"
            url = pages[n % len(pages)]
            row = {
                "type": kind,
                "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "email": f"person{person}@history.test",
                "url": url,
                "utm_source": source,
                "utm_medium": medium,
                "utm_campaign": campaign,
                "title": f"Page {n % len(pages)}",
            }
            if writer:
                writer.writerow(row.values())
            else:
                item = {k: v for k, v in row.items() if v and k != "title"}
                item["properties"] = {"title": row["title"]}
                out.write(json.dumps(item) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "ndjson"), default="csv")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="embudo-bench-import-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
    env.update(EMBUDO_DATA_DIR=str(workdir / "data"), EMBUDO_SECRET_KEY="bench")
    path = workdir / f"events.{args.format}"
    started = time.perf_counter()
    make_file(path, args.events, args.format)
    size_mb = path.stat().st_size / 1e6
    print(
        f"file: {args.events:,} events, {size_mb:,.0f} MB ({time.perf_counter() - started:.1f} s)"
    )
    subprocess.run(["embudo", "migrate", "-v0"], env=env, check=True, cwd=REPO)

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    done = subprocess.run(
        ["embudo", "import", "events", str(path), "--quiet"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"the import failed with exit code {done.returncode}")
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    with sqlite3.connect(workdir / "data" / "embudo.sqlite3") as db:
        events = db.execute("SELECT count(*) FROM tracking_event").fetchone()[0]
        touchpoints = db.execute("SELECT count(*) FROM tracking_touchpoint").fetchone()[0]
        contacts = db.execute("SELECT count(*) FROM crm_contact").fetchone()[0]
    print(
        f"imported {events:,} events, {touchpoints:,} touchpoints, {contacts:,} contacts "
        f"in {elapsed:.1f} s: {events / elapsed:,.0f} events/s; CPU {cpu:.1f} s "
        f"({events / cpu:,.0f} events per CPU-second); "
        f"peak memory {peak_mb:,.0f} MB (largest child process; before: {before / 1024:.0f} MB)"
    )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
