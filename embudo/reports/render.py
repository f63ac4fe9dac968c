"""A report result as a text table, CSV or JSON: the CLI's and the downloads' formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

from embudo.reports import ReportResult, Table

FORMATS = ("table", "csv", "json")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def as_text(table: Table) -> str:
    cells = [[str(c) for c in table.columns], *[[_cell(v) for v in row] for row in table.rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                value.ljust(width) if i == 0 else value.rjust(width)
                for i, (value, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def as_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([[_cell(v) for v in row] for row in table.rows])
    return out.getvalue()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def as_json(result: ReportResult) -> str:
    return json.dumps(result.to_dict(), default=_default, indent=2, ensure_ascii=False) + "\n"


def render(result: ReportResult, fmt: str) -> str:
    if fmt == "table":
        return as_text(result.table())
    if fmt == "csv":
        return as_csv(result.table())
    if fmt == "json":
        return as_json(result)
    raise ValueError(f"{fmt!r} is not one of {', '.join(FORMATS)}")
