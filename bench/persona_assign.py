"""How long reassigning every contact's persona takes on the embedded default (SQLite): the
demo's four personas (job-title conditions) over the shared big database, set-based (one
``INSERT … SELECT`` per persona). Prints contacts, seconds, rate, peak memory and load average.

    python3 bench/persona_assign.py                              # 1,000,000 contacts
    python3 bench/persona_assign.py --contacts 100000 --events 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()

    from bigdata import prepare

    prepare(f"segments-{args.contacts}", contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from embudo.crm.models import Contact
    from embudo.segments import actions, queries
    from embudo.segments.demo import PERSONAS
    from embudo.segments.models import Persona

    Persona.objects.all().delete()
    for priority, (name, text, conditions) in enumerate(PERSONAS, start=1):
        Persona.objects.create(
            name=name, description=text, conditions=conditions, priority=priority
        )
    contacts = Contact.objects.count()
    started = time.perf_counter()
    assigned = actions.assign_personas()
    seconds = time.perf_counter() - started
    print(
        f"{contacts:,} contacts, {len(PERSONAS)} personas: {assigned:,} assigned in "
        f"{seconds:.1f} s ({contacts / seconds:,.0f} contacts/s)"
    )
    counts = queries.persona_counts()
    for persona in queries.personas():
        print(f"  {persona.name}: {counts.get(persona.pk, 0):,}")
    started = time.perf_counter()
    some = list(Contact.objects.order_by("-id").values_list("pk", flat=True)[:100])
    actions.assign_personas(some)
    hook_ms = (time.perf_counter() - started) * 1000
    print(f"100 contacts reassigned (the hook after a change) in {hook_ms:.0f} ms")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"peak memory {peak_mb:,.0f} MB; load average {load}")


if __name__ == "__main__":
    main()
