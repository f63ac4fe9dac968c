"""`embudo personas assign`: give every contact its persona again (after a bulk load, or daily,
since conditions like "in the last 14 days" change with time alone)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandParser

from embudo.commands import DataCommand
from embudo.crm.models import Contact
from embudo.segments import actions, queries


class Command(DataCommand):
    help = "Personas: `assign` reassigns every contact's persona (set-based)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["assign"])

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        assigned = actions.assign_personas()
        seconds = time.perf_counter() - started
        total = Contact.objects.count()
        self.stdout.write(f"{assigned:,} of {total:,} contacts have a persona ({seconds:.1f} s)")
        counts = queries.persona_counts()
        for persona in queries.personas():
            self.stdout.write(
                f"  {persona.priority:>5}  {persona.name}: {counts.get(persona.pk, 0):,}"
            )
