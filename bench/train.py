"""Benchmark and quality check of `embudo score train` (predictive conversion).

1. Bank: the UCI Bank Marketing file (41,188 calls) becomes a contacts CSV (an external id, the
   outcome as `lifecycle_stage`: customer for y=yes, disqualified for y=no; every other column a
   custom property), imported with the real `embudo import contacts`, then trained with
   `embudo score train --exclude duration --holdout 0.3 --seed N`: AUC, log loss, Brier and time
   on the 30 % held out. Then once more with `duration` left in: the leakage guard must flag it.
2. Scale: 100,000 contacts with outcomes (the bank rows replicated under new ids) plus 10,000
   open leads and 3 events per contact, imported the same way; `embudo score train` timed
   (target: under 2 minutes), including scoring the open leads.

    python3 bench/train.py                 # both parts
    python3 bench/train.py --part bank --seeds 1,2,3
    python3 bench/train.py --part scale --contacts 20000   # a quick run

Each step runs as its own `embudo` process on a throwaway SQLite data folder; the figures are
that process's wall time, CPU time and peak RSS. Prints the load average too: the machine is
shared, so timings are noisy.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BANK = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/uci_bank_marketing/bank-additional-full.csv"
)
EVENT_TYPES = ("page_view", "email_click", "form_submit", "pricing_view")


def run(args: list[str], data_dir: Path, label: str) -> tuple[str, dict[str, float]]:
    """Run `embudo ARGS` on ``data_dir``; its output and figures (wall s, CPU s, peak MB)."""
    env = {**os.environ, "EMBUDO_DATA_DIR": str(data_dir)}
    env.pop("EMBUDO_DATABASE_URL", None)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(["embudo", *args], env=env, stdout=out, stderr=err)
        # wait4 (not wait) to read this child's own CPU time and peak memory.
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text, problems = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"{label} failed ({process.returncode}):\n{text}\n{problems}")
    return text, {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
    }


def bank_rows() -> tuple[list[str], list[list[str]]]:
    with BANK.open(newline="") as source:
        reader = csv.reader(source, delimiter=";")
        header = next(reader)
        return header, list(reader)


def write_contacts(
    path: Path, header: list[str], rows: list[list[str]], total: int, open_leads: int
) -> None:
    """The bank rows as Embudo contacts, replicated under new ids up to ``total``, plus
    ``open_leads`` contacts still in play (stage lead, no outcome) to be scored."""
    target = header.index("y")
    columns = [c.replace(".", "_") for i, c in enumerate(header) if i != target]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["bank_id", "lifecycle_stage", *columns])
        # Shuffled, so a slice or a replica holds every month of the campaign.
        order = list(range(len(rows)))
        random.Random(11).shuffle(order)
        for n in range(total + open_leads):
            row = rows[order[n % len(rows)]]
            if n < total:
                stage = "customer" if row[target] == "yes" else "disqualified"
            else:
                stage = "lead"
            writer.writerow([f"bank-{n}", stage, *[v for i, v in enumerate(row) if i != target]])


def write_events(path: Path, contacts: int, per_contact: int) -> int:
    rng = random.Random(7)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    count = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["type", "occurred_at", "external_id"])
        for n in range(contacts):
            for _ in range(per_contact):
                when = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 300))
                writer.writerow([rng.choice(EVENT_TYPES), when.isoformat(), f"bank-{n}"])
                count += 1
    return count


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bank(seeds: list[int]) -> None:
    header, rows = bank_rows()
    with tempfile.TemporaryDirectory(prefix="embudo-bench-train-") as tmp:
        data = Path(tmp) / "data"
        csv_path = Path(tmp) / "bank.csv"
        write_contacts(csv_path, header, rows, len(rows), 0)
        run(["migrate", "-v0"], data, "migrate")
        _out, imported = run(
            ["import", "contacts", str(csv_path), "--id-column", "bank_id", "-q"], data, "import"
        )
        print(f"bank: imported {len(rows):,} contacts in {imported['wall_s']:.1f} s")
        aucs = []
        for seed in seeds:
            out, fig = run(
                [
                    "score",
                    "train",
                    "--exclude",
                    "duration",
                    "--holdout",
                    "0.3",
                    "--seed",
                    str(seed),
                    "--format",
                    "json",
                ],
                data,
                "train",
            )
            result = json.loads(out)
            h = result["metrics"]["holdout"]
            aucs.append(h["auc"])
            cv = {k: round(v, 3) for k, v in result["metrics"]["cv_auc"].items()}
            print(
                f"bank seed {seed}: {result['algorithm']} (cv {cv}); "
                f"held out {h['contacts']:,} ({h['positives']:,} customers): AUC {h['auc']:.4f}, "
                f"log loss {h['log_loss']:.4f}, Brier {h['brier']:.4f}; "
                f"train {fig['wall_s']:.1f} s wall, {fig['cpu_s']:.1f} s CPU, "
                f"peak {fig.get('peak_mb', 0):.0f} MB; "
                f"flags {[f['field'] for f in result['flags']]}; load {load()}"
            )
        print(
            f"bank AUC without duration: mean {sum(aucs) / len(aucs):.4f} over seeds {seeds}, "
            f"min {min(aucs):.5f}, max {max(aucs):.5f}; below 0.80: {sum(a < 0.80 for a in aucs)}"
        )
        out, fig = run(
            ["score", "train", "--holdout", "0.3", "--seed", str(seeds[0]), "--format", "json"],
            data,
            "train",
        )
        result = json.loads(out)
        flags = [
            (f["field"], round(f["single_auc"], 3), round(f["permutation_drop"], 3))
            for f in result["flags"]
        ]
        print(
            f"bank with duration left in: AUC {result['metrics']['holdout']['auc']:.4f}; "
            f"leakage guard flags (field, single-field AUC, permutation drop) {flags} "
            f"({fig['wall_s']:.1f} s)"
        )


def scale(contacts: int, open_leads: int, events_per_contact: int) -> None:
    header, rows = bank_rows()
    with tempfile.TemporaryDirectory(prefix="embudo-bench-train-") as tmp:
        data = Path(tmp) / "data"
        contacts_csv = Path(tmp) / "contacts.csv"
        events_csv = Path(tmp) / "events.csv"
        write_contacts(contacts_csv, header, rows, contacts, open_leads)
        run(["migrate", "-v0"], data, "migrate")
        _out, fig = run(
            ["import", "contacts", str(contacts_csv), "--id-column", "bank_id", "-q"],
            data,
            "import",
        )
        print(f"scale: imported {contacts + open_leads:,} contacts in {fig['wall_s']:.1f} s")
        if events_per_contact:
            count = write_events(events_csv, contacts + open_leads, events_per_contact)
            _out, fig = run(["import", "events", str(events_csv), "-q"], data, "import events")
            print(f"scale: imported {count:,} events in {fig['wall_s']:.1f} s")
        out, fig = run(
            ["score", "train", "--exclude", "duration", "--holdout", "0.2", "--format", "json"],
            data,
            "train",
        )
        result = json.loads(out)
        h = result["metrics"]["holdout"]
        print(
            f"scale: embudo score train on {contacts:,} contacts with outcomes "
            f"(+{open_leads:,} open scored, {events_per_contact} events each): "
            f"{fig['wall_s']:.1f} s wall, {fig['cpu_s']:.1f} s CPU, "
            f"peak {fig.get('peak_mb', 0):.0f} MB, "
            f"{contacts / fig['wall_s']:,.0f} contacts/s; {result['algorithm']}, held-out AUC "
            f"{h['auc']:.4f}; {len(result['metrics']['cv_auc'])} candidates; "
            f"fields {len(result['metrics']['single_field_auc'])}; "
            f"scored {result['scored']:,}; load {load()} (target < 120 s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("bank", "scale", "both"), default="both")
    parser.add_argument("--seeds", default="1,2,3,4,5,6,7,8,9,10")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=3, help="events per contact")
    options = parser.parse_args()
    if not BANK.exists():
        sys.exit(f"the bank data set is not at {BANK}")
    print(f"load average at start: {load()}")
    if options.part in ("bank", "both"):
        bank([int(s) for s in options.seeds.split(",")])
    if options.part in ("scale", "both"):
        scale(options.contacts, options.open, options.events)


if __name__ == "__main__":
    main()
