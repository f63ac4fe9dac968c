"""What goes wrong in an import: the file as a whole (:class:`ImportFileError`), or a row
(:class:`RowError`), every one of which an :class:`ErrorReport` keeps with its line and column."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from embudo.errors import EmbudoError

# Past this many problems only the count grows, so a file where every row is wrong cannot
# exhaust memory with its own error report.
MAX_ERRORS_KEPT = 100_000


class ImportFileError(EmbudoError):
    """The file as a whole cannot be imported (unreadable, no header, bad mapping…)."""


@dataclass(frozen=True, order=True)
class RowError:
    """A problem in one row: ``line`` is the file's line number (the header is line 1)."""

    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        if self.column:
            return _("line %(line)s, column %(column)s: %(problem)s") % {
                "line": self.line,
                "column": repr(self.column),
                "problem": self.problem,
            }
        return _("line %(line)s: %(problem)s") % {"line": self.line, "problem": self.problem}


class ErrorReport:
    """Every row problem of one import run, and which lines they make invalid."""

    def __init__(self) -> None:
        self._errors: list[RowError] = []
        self.count = 0
        self.invalid_lines: set[int] = set()

    def add(self, line: int, column: str, problem: str) -> None:
        self.count += 1
        self.invalid_lines.add(line)
        if len(self._errors) < MAX_ERRORS_KEPT:
            self._errors.append(RowError(line, column, problem))

    def __len__(self) -> int:
        return self.count

    @property
    def errors(self) -> list[RowError]:
        return sorted(self._errors)

    @property
    def truncated(self) -> bool:
        return self.count > len(self._errors)

    def write_csv(self, path: str | Path) -> None:
        write_errors_csv(self.errors, path)


def write_errors_csv(errors: Iterable[RowError], path: str | Path) -> None:
    """The report as CSV (line, column, problem), to fix the file with a spreadsheet beside it."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "problem"])
        for error in errors:
            writer.writerow([error.line, error.column, error.problem])
