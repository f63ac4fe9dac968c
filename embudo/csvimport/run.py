"""The run of an import: the kinds `embudo import` knows, their options and result, and
:func:`run_import`, which gives every kind one transaction, the dry run, the row-level error
report and the audit entry."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _
from tqdm import tqdm

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.csvimport.report import ErrorReport, ImportFileError, RowError
from embudo.csvimport.source import CsvSource


@dataclass
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)  # source column → field
    id_column: str | None = None
    types: dict[str, str] = field(default_factory=dict)  # source column → property type
    dry_run: bool = False
    skip_invalid: bool = False
    delimiter: str | None = None
    encoding: str | None = None
    progress: bool = False
    actor: Actor = None


@dataclass
class ImportResult:
    kind: str
    file: str
    dry_run: bool = False
    committed: bool = False
    rows: int = 0  # data rows read (blank lines not counted)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # invalid rows left out under --skip-invalid
    properties: dict[str, str] = field(default_factory=dict)  # new property → type
    counts: dict[str, int] = field(default_factory=dict)  # kind-specific, e.g. companies_created
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    # Ids of the records created or changed (each kind tells the pipeline of them; see
    # embudo.pipeline).
    changed_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "properties": self.properties,
            **self.counts,
        }


@dataclass(frozen=True)
class Importer:
    """A kind `embudo import` knows: ``run`` reads the source, reports row problems to the
    report, counts its work in the result, and writes through the ORM; the caller owns the
    transaction, so ``run`` never commits."""

    kind: str
    run: Callable[[CsvSource, ImportOptions, ImportResult, ErrorReport], None]
    description: Any = ""  # a (lazily translated) line for `embudo import --help`


IMPORTERS: dict[str, Importer] = {}


def register_importer(importer: Importer) -> Importer:
    IMPORTERS[importer.kind] = importer
    return importer


def discover_importers() -> dict[str, Importer]:
    """Import every installed app's ``importing`` module, so each registers its kinds."""
    autodiscover_modules("importing")
    return IMPORTERS


class _RollBack(Exception):
    """Leaves the import's transaction without writing anything."""


def run_import(kind: str, path: str | Path, options: ImportOptions | None = None) -> ImportResult:
    """Import ``path`` as ``kind`` in one transaction.

    Nothing is written when the run is a dry run, or when a row is invalid and ``skip_invalid``
    is off; then ``result.committed`` is False and ``result.errors`` says why.
    """
    options = options or ImportOptions()
    importer = discover_importers().get(kind)
    if importer is None:
        raise ImportFileError(
            _("unknown kind %(kind)r; Embudo can import: %(kinds)s")
            % {"kind": kind, "kinds": ", ".join(sorted(IMPORTERS))}
        )
    source = CsvSource(path, delimiter=options.delimiter, encoding=options.encoding)
    result = ImportResult(kind=kind, file=str(path), dry_run=options.dry_run)
    report = ErrorReport()
    try:
        with transaction.atomic(), _collector_paused():
            importer.run(source, options, result, report)
            result.errors, result.error_count = report.errors, len(report)
            result.skipped = len(report.invalid_lines)
            if options.dry_run or (len(report) and not options.skip_invalid):
                raise _RollBack
            record_audit(
                "import",
                kind[:32],
                actor=options.actor,
                changes={**result.summary(), "file": Path(path).name},
            )
            result.committed = True
    except _RollBack:
        pass
    except IntegrityError as error:
        # Only a concurrent writer can get here: every key was checked inside this transaction.
        raise ImportFileError(
            _("the database refused the import, nothing was written (%s); run it again") % error
        ) from None
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: an import allocates millions of short-lived objects while
    holding a large index of keys, and each automatic pass would scan that index again (a
    quarter of the run's time, measured). Reference counting still frees everything an import
    makes; any cycle left is collected once the collector resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def progress_bar(enabled: bool, **kwargs: Any) -> Iterator[tqdm]:
    bar = tqdm(file=sys.stderr, disable=not enabled, dynamic_ncols=True, **kwargs)
    try:
        yield bar
    finally:
        bar.close()
