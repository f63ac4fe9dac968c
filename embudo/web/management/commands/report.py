"""`embudo report NAME`: any registered report (forecast, sales, …) as a table, CSV or JSON.

Reports register themselves (see :mod:`embudo.reports`); each one's options become flags here.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from embudo.commands import DataCommand
from embudo.reports import ReportError, all_options, get_report, report_names, run_report
from embudo.reports.render import FORMATS, render


class Command(DataCommand):
    help = "Run a report: " + ", ".join(report_names()) if report_names() else "Run a report"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the report: " + (", ".join(report_names()) or "—"))
        parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")
        parser.add_argument("--format", choices=FORMATS, default="table")
        for option in all_options():
            parser.add_argument(
                f"--{option.name.replace('_', '-')}", dest=f"opt_{option.name}", help=option.help
            )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = get_report(options["name"])
            raw = {
                key.removeprefix("opt_"): value
                for key, value in options.items()
                if key.startswith("opt_") and value is not None
            }
            unknown = sorted(set(raw) - {o.name for o in spec.options})
            if unknown:
                known = ", ".join(f"--{o.name.replace('_', '-')}" for o in spec.options) or "none"
                flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
                raise ReportError(f"report {spec.name} has no option {flags}; its options: {known}")
            result = run_report(
                spec.name, date_from=options["date_from"], date_to=options["date_to"], options=raw
            )
        except ReportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(render(result, options["format"]), ending="")
