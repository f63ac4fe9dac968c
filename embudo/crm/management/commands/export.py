"""`embudo export KIND`: contacts, companies, and the kinds other apps add, as CSV."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _

from embudo.commands import DataCommand
from embudo.crm.exporting import ExportError, discover_exporters, export_csv


class Command(DataCommand):
    help = (
        "Export records as CSV, to standard output or --output FILE. The columns are the ones "
        "`embudo import` reads, so an export can be imported back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = ", ".join(sorted(discover_exporters()))
        parser.add_argument("kind", help=f"what to export: {kinds}")
        parser.add_argument("--output", "-o", metavar="FILE", help="write here, not to stdout")
        parser.add_argument(
            "--delimiter",
            default=",",
            help="the column separator (default ,; use ; for Excel "
            "in languages with a decimal comma)",
        )
        parser.add_argument(
            "--bom",
            action="store_true",
            help="start with a UTF-8 byte-order mark, so Excel shows accents correctly",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        delimiter = "\t" if options["delimiter"] in {"\\t", "tab"} else options["delimiter"]
        if len(delimiter) != 1:
            raise CommandError(_("the delimiter must be one character, not %r") % delimiter)
        kind, path = options["kind"], options["output"]
        try:
            if path:
                try:
                    out = open(  # noqa: SIM115 - closed below, after a possible error
                        path, "w", encoding="utf-8-sig" if options["bom"] else "utf-8", newline=""
                    )
                except OSError as error:
                    raise CommandError(
                        _("cannot write %(path)s: %(error)s")
                        % {
                            "path": path,
                            "error": error.strerror,
                        }
                    ) from None
                with out:
                    count = export_csv(kind, out, delimiter=delimiter)
                self.stderr.write(
                    _("Exported %(n)s %(kind)s to %(path)s.")
                    % {"n": count, "kind": kind, "path": path}
                )
            else:
                sink = _Sink(self.stdout)
                if options["bom"]:
                    sink.write("\ufeff")
                export_csv(kind, sink, delimiter=delimiter)  # type: ignore[arg-type]
        except ExportError as error:
            raise CommandError(str(error)) from None
        except BrokenPipeError:
            # `embudo export contacts | head`: the reader left, which is not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


class _Sink:
    """Writes text to a command's stdout as is (its wrapper would add line endings)."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")
