"""A table of records imported in two streaming passes: every cell, key and inferred type checked
first, then the valid rows written a chunk at a time with set-based queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.translation import gettext as _

from embudo.csvimport.mapping import (
    FIELD,
    PROPERTY,
    STAGE_DATE,
    CustomProperties,
    FieldSpec,
    map_columns,
)
from embudo.csvimport.report import ErrorReport, ImportFileError
from embudo.csvimport.run import ImportOptions, ImportResult, progress_bar
from embudo.csvimport.source import CsvSource, Record
from embudo.errors import ValidationFailed

# Rows written per round of look-ups and bulk writes: big enough that queries are few, small
# enough that a chunk's objects never weigh much.
WRITE_CHUNK = 1000


@dataclass
class ParsedRow:
    line: int
    fields: dict[str, Any] = field(default_factory=dict)  # only the non-empty cells
    properties: dict[str, Any] = field(default_factory=dict)
    stage_dates: list[tuple[str, dt.datetime]] = field(default_factory=list)


class TableImport:
    """Import rows of one model: a checking pass over the whole file (cell values, duplicate keys
    within the file, custom property types), then a writing pass in chunks of
    :data:`WRITE_CHUNK` rows, each chunk looked up and written with set-based queries.

    Subclasses give ``fields``, ``keys`` (values that must be unique within the file) and
    ``write_chunk``, and the custom properties other columns become, if the records have any.
    """

    noun: ClassVar[str] = "rows"

    def __init__(
        self,
        source: CsvSource,
        options: ImportOptions,
        result: ImportResult,
        report: ErrorReport,
    ) -> None:
        self.source, self.options, self.result, self.report = source, options, result, report
        self.now = timezone.now()
        self.fields = self.field_specs()
        self.properties = self.custom_properties()
        self.columns, notes = map_columns(
            source.header,
            fields=self.fields,
            options=options,
            properties=self.properties,
            stage_of=self.stage_of,
            read_only=self.read_only_columns(),
        )
        result.notes.extend(notes)
        self.width = len(source.header)
        # Each built-in field's column header, to name it in row errors.
        self.headers = {c.target: c.header for c in self.columns if c.kind == FIELD}
        self.unnamed = [index for index, name in enumerate(source.header) if not name]

    # Hooks for subclasses.
    def field_specs(self) -> dict[str, FieldSpec]:
        raise NotImplementedError

    def custom_properties(self) -> CustomProperties | None:
        """Where columns that name no field go; without them, such a column is an error."""
        return None

    def stage_of(self, key: str) -> str | None:
        """The stage a column records the date of, from its normalised header (or None)."""
        return None

    def parse_stage_date(self, raw: str) -> dt.datetime:
        """The moment a cell of a stage-date column holds."""
        raise NotImplementedError

    def read_only_columns(self) -> Iterable[str]:
        return ()

    # The fields that identify a record, with the words row errors call them by.
    key_labels: ClassVar[dict[str, Any]] = {}

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        """(field, value) of each value that identifies the row's record within the file."""
        return ()

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        raise NotImplementedError

    # The passes.
    def run(self) -> None:
        self.check()
        self.define_properties()
        self.write()

    def parse(self, record: Record) -> tuple[ParsedRow, bool]:
        """The row's good values, and whether every cell was good (problems go to the report)."""
        values = record.values
        ok = True
        if len(values) > self.width and any(v.strip() for v in values[self.width :]):
            self.report.add(
                record.line,
                "",
                _("the row has %(n)s values but the header names only %(m)s columns")
                % {"n": len(values), "m": self.width},
            )
            ok = False
        row = ParsedRow(record.line)
        count = len(values)
        for column in self.columns:
            index = column.index
            raw = values[index].strip() if index < count else ""
            if not raw:
                continue
            try:
                if column.kind == FIELD:
                    row.fields[column.target] = self.fields[column.target].parse(raw)
                elif column.kind == STAGE_DATE:
                    row.stage_dates.append((column.target, self.parse_stage_date(raw)))
                elif column.type:
                    custom = self._custom()
                    row.properties[column.target] = custom.coerce(raw, column.type, column.choices)
                else:
                    row.properties[column.target] = raw  # typed once the whole file is read
            except ValueError as error:
                self.report.add(record.line, column.header, str(error))
                ok = False
        for index in self.unnamed:
            if index < count and values[index].strip():
                self.report.add(
                    record.line,
                    _("column %s") % (index + 1),
                    _("the cell holds a value but its column has no name in the header"),
                )
                ok = False
        return row, ok

    def check(self) -> None:
        """First pass: every cell, duplicate keys within the file, and the inferred types."""
        to_infer = {
            c.index: set(self._custom().inferable)
            for c in self.columns
            if c.kind == PROPERTY and not c.type
        }
        filled: set[int] = set()  # columns with at least one value
        seen: dict[tuple[str, str], int] = {}
        reported: set[tuple[str, str]] = set()
        rows = 0
        with progress_bar(
            self.options.progress,
            total=self.source.size,
            unit="B",
            unit_scale=True,
            desc=_("Checking %s") % self.source.path.name,
        ) as bar:
            for record in self.source.records(bar if self.options.progress else None):
                rows += 1
                row, _ok = self.parse(record)
                for index, candidates in to_infer.items():
                    if index < len(record.values) and (raw := record.values[index].strip()):
                        filled.add(index)
                        if candidates:
                            self._narrow(candidates, raw)
                # Keys count even on a row with other problems: fixing those must not reveal
                # a duplicate only then.
                for key, value in self.keys(row):
                    first = seen.setdefault((key, value), record.line)
                    if first != record.line:
                        header = self.headers.get(key, key)
                        problem = _("%(label)s %(value)s appears on line %(a)s and line %(b)s") % {
                            "label": self.key_labels.get(key, key),
                            "value": value,
                            "a": first,
                            "b": record.line,
                        }
                        if (key, value) not in reported:
                            reported.add((key, value))
                            self.report.add(first, header, problem)
                        self.report.add(record.line, header, problem)
        if rows == 0:
            raise ImportFileError(_("the file has a header row but no data rows"))
        self.result.rows = rows
        for column in list(self.columns):
            if column.index not in to_infer:
                continue
            if column.index not in filled:
                # Exports from other tools carry dozens of never-used columns: no property for them.
                self.columns.remove(column)
                self.result.notes.append(
                    _("column %r is empty in every row; no property was created for it")
                    % column.header
                )
                continue
            candidates, custom = to_infer[column.index], self._custom()
            column.type = next((t for t in custom.inferable if t in candidates), custom.fallback)

    def define_properties(self) -> None:
        """Create the custom properties the file brings, with their types."""
        for column in self.columns:
            if column.kind != PROPERTY or column.declared:
                continue
            try:
                self._custom().define(
                    column.target, column.type, label=column.header, actor=self.options.actor
                )
            except ValidationFailed as failed:
                raise ImportFileError(
                    _("column %(name)r cannot become a custom property: %(why)s")
                    % {"name": column.header, "why": failed}
                ) from None
            column.declared = True
            self.result.properties[column.target] = column.type

    def write(self) -> None:
        """Second pass: the valid rows, a chunk at a time."""
        invalid = self.report.invalid_lines
        total = self.result.rows - len(invalid)
        with progress_bar(
            self.options.progress, total=total, unit=" rows", desc=_("Importing %s") % self.noun
        ) as bar:
            chunk: list[ParsedRow] = []
            for record in self.source.records():
                if record.line in invalid:
                    continue
                row, _ok = self.parse(record)  # valid: the first pass read the same bytes
                chunk.append(row)
                if len(chunk) >= WRITE_CHUNK:
                    self.write_chunk(chunk)
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                self.write_chunk(chunk)
                bar.update(len(chunk))

    def _narrow(self, candidates: set[str], raw: str) -> None:
        """Drop the types ``raw`` does not fit from a column's candidate types."""
        fits = self._custom().fits
        for type_ in list(candidates):
            if not fits(type_, raw):
                candidates.discard(type_)

    def _custom(self) -> CustomProperties:
        # Only custom properties make property columns: whoever asks for them has them.
        assert self.properties is not None
        return self.properties


def run_table(
    cls: type[TableImport],
) -> Callable[[CsvSource, ImportOptions, ImportResult, ErrorReport], None]:
    """The :attr:`Importer.run <embudo.csvimport.run.Importer.run>` of a kind imported by
    ``cls``."""

    def run(
        source: CsvSource, options: ImportOptions, result: ImportResult, report: ErrorReport
    ) -> None:
        cls(source, options, result, report).run()

    return run
