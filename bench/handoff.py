"""How fast MQLs reach sales and how fast the SLA report answers (SQLite by default).

1. Handoff at import: a CSV of N contacts at stage ``mql`` goes through ``embudo import
   contacts`` (the real path: one transaction, then the stage hooks on commit), which hands
   every one of them to a rep of a 10-rep team (round robin, capacity, availability) with their
   SLA deadlines and delayed tasks. Timed end to end, and the handoff part on its own.
2. The SLA report over a year with M handoffs (bulk-inserted, a fast path that times nothing),
   the real :func:`embudo.handoff.reports.sla_report` by rep and by team, several runs.

    python3 bench/handoff.py                           # 10,000 MQLs, 100,000 handoffs
    python3 bench/handoff.py --mqls 2000 --handoffs 20000
    python3 bench/handoff.py --database-url postgres://postgres@127.0.0.1:5432/embudo_bench

Targets: 10,000 MQLs handed off in under 10 s; the report over 100,000 handoffs under 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup_team(reps: int = 10) -> list[int]:
    from embudo.accounts.actions import create_user
    from embudo.deals import actions as deals
    from embudo.handoff import actions
    from embudo.handoff.models import AssignmentRule, BusinessHours, SlaPolicy

    team = deals.create_team("Bench team")
    ids = []
    for n in range(reps):
        user = create_user(f"benchrep{n}", role="sales", email=f"rep{n}@example.com")
        deals.set_team(user, team)
        if n % 3 == 0:
            actions.set_availability(user, {"capacity": 900})
        ids.append(user.pk)
    hours = BusinessHours.objects.create(name="Bench hours", time_zone="Europe/Madrid")
    AssignmentRule.objects.create(name="All to the team", team=team)
    SlaPolicy.objects.create(
        name="Enterprise",
        position=1,
        condition={"field": "company.employees", "op": "gte", "value": 1000},
        business_hours=hours,
        first_touch_minutes=60,
        decision_minutes=480,
    )
    SlaPolicy.objects.create(
        name="Standard", position=2, business_hours=hours, first_touch_minutes=240,
        decision_minutes=960,
    )  # fmt: skip
    return ids


def bench_import(mqls: int, folder: Path) -> None:
    from embudo.csvimport.run import ImportOptions, run_import
    from embudo.handoff import actions
    from embudo.handoff.models import Handoff

    path = folder / "mqls.csv"
    with path.open("w") as out:
        out.write("email,first_name,last_name,company,lifecycle_stage,original_source\n")
        for i in range(mqls):
            out.write(f"mql{i}@example.com,Lead,Number {i},Company {i % 500},mql,google\n")
    timings: dict[str, float] = {}
    real_hand_off = actions.hand_off

    def timed_hand_off(*args: object, **kwargs: object) -> object:
        start, cpu = time.perf_counter(), time.process_time()
        result = real_hand_off(*args, **kwargs)  # type: ignore[arg-type]
        timings["hand_off"] = timings.get("hand_off", 0.0) + time.perf_counter() - start
        timings["cpu"] = timings.get("cpu", 0.0) + time.process_time() - cpu
        return result

    actions.hand_off = timed_hand_off  # type: ignore[assignment]
    start, cpu = time.perf_counter(), time.process_time()
    result = run_import("contacts", path, ImportOptions())
    total, cpu_total = time.perf_counter() - start, time.process_time() - cpu
    actions.hand_off = real_hand_off  # type: ignore[assignment]
    assert result.committed, result.errors[:3]
    handed = Handoff.objects.count()
    queued = Handoff.objects.filter(owner__isnull=True).count()
    from django_tasks_db.models import DBTaskResult

    tasks = DBTaskResult.objects.count()
    print(f"import that qualifies {mqls:,} MQLs: {total:.2f} s wall, {cpu_total:.2f} s CPU")
    seconds = max(timings.get("hand_off", 0.0), 1e-9)
    print(
        f"  handoff of {handed:,} MQLs (routing, deadlines, owners, notices, tasks): "
        f"{seconds:.2f} s wall, {timings.get('cpu', 0.0):.2f} s CPU = "
        f"{handed / seconds:,.0f} MQLs/s"
    )
    print(f"  queued (capacity reached): {queued:,}; tasks enqueued: {tasks:,}")


def fill_handoffs(count: int, reps: list[int]) -> None:
    from django.db import connection

    from embudo.crm.models import Contact
    from embudo.handoff.models import Handoff

    rng = np.random.default_rng(7)
    now = dt.datetime.now(dt.UTC)
    start_contact = (Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    Contact.objects.bulk_create(
        (
            Contact(email=f"h{i}@bench.example", lifecycle_stage="sql", created_at=now)
            for i in range(count)
        ),
        batch_size=5_000,
    )
    contact_ids = list(
        Contact.objects.filter(pk__gte=start_contact).order_by("pk").values_list("pk", flat=True)
    )
    offsets = rng.uniform(0, 365 * 86_400, count)
    touch = rng.exponential(3 * 3600, count)
    touched = rng.random(count) < 0.9
    verdicts = rng.choice(["accepted", "rejected", "recycled", ""], count, p=[0.5, 0.2, 0.1, 0.2])
    sources = rng.choice(["google", "linkedin", "webinar", "referral", ""], count)
    owners = rng.choice(reps, count)
    rows = []
    for i in range(count):
        at = now - dt.timedelta(seconds=float(offsets[i]))
        due = at + dt.timedelta(hours=4)
        seconds = int(touch[i]) if touched[i] else None
        ft_state = (
            "met"
            if seconds is not None and seconds <= 4 * 3600
            else "breached"
            if at < now - dt.timedelta(hours=4)
            else "pending"
        )
        decision = "met" if verdicts[i] else "pending"
        state = (
            "breached"
            if ft_state == "breached"
            else "met"
            if decision == "met" and ft_state == "met"
            else "pending"
        )
        rows.append(
            Handoff(
                contact_id=contact_ids[i],
                handed_off_at=at,
                owner_id=int(owners[i]),
                source=str(sources[i]),
                open=False,
                first_touch_due=due,
                first_touch_at=at + dt.timedelta(seconds=seconds) if seconds is not None else None,
                first_touch_seconds=seconds,
                first_touch_state=ft_state,
                decision_state=decision,
                state=state,
                verdict=str(verdicts[i]),
            )
        )
    Handoff.objects.bulk_create(rows, batch_size=5_000)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE handoff_handoff")


def bench_report(count: int, reps: list[int], runs: int) -> None:
    from embudo.handoff import reports

    started = time.perf_counter()
    fill_handoffs(count, reps)
    filled = time.perf_counter() - started
    print(f"filled {count:,} handoffs over a year in {filled:.1f} s (not timed)")
    year_ago = dt.date.today() - dt.timedelta(days=365)
    for by in ("rep", "team"):
        times, cpus = [], []
        for _ in range(runs):
            start, cpu = time.perf_counter(), time.process_time()
            report = reports.sla_report(year_ago, dt.date.today(), by=by)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        median = statistics.median(times)
        print(
            f"SLA report by {by} over {report.sales_total.handoffs:,} handoffs: median "
            f"{median * 1000:.0f} ms wall, {statistics.median(cpus) * 1000:.0f} ms CPU "
            f"(fastest {min(times) * 1000:.0f}, slowest {max(times) * 1000:.0f}; {runs} runs) "
            f"= {report.sales_total.handoffs / median:,.0f} handoffs/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mqls", type=int, default=10_000)
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="embudo-bench-handoff-"))
    os.environ["EMBUDO_DATA_DIR"] = str(folder)
    if options.database_url:
        os.environ["EMBUDO_DATABASE_URL"] = options.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        print(f"database: {connection.vendor}; load average: {os.getloadavg()}")
        reps = setup_team()
        bench_import(options.mqls, folder)
        bench_report(options.handoffs, reps, options.runs)
        print(f"peak RSS: {peak_mb():.0f} MB; load average: {os.getloadavg()}")
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
