"""`embudo import events FILE`: a year of history from CSV or NDJSON, through the same door as
the events API (:func:`embudo.tracking.actions.record_events`), in the CRM import's one
transaction with its row-level error report.

CSV columns are matched by header (``type``, ``occurred_at``, ``email``, ``external_id``,
``contact_id``, ``visitor_id``, ``url``, ``referrer``, ``utm_*``, ``event_id`` and a few aliases);
any other column becomes an event property. NDJSON lines are event objects exactly as the API
takes them. Events without an ``event_id`` get one derived from their content, so importing the
same file twice adds nothing the second time (and rows identical in every column, time
included, count once). Every imported event needs its ``occurred_at``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo.csvimport.mapping import normalize_header
from embudo.csvimport.report import ErrorReport, ImportFileError
from embudo.csvimport.run import (
    Importer,
    ImportOptions,
    ImportResult,
    progress_bar,
    register_importer,
)
from embudo.csvimport.source import CsvSource
from embudo.tracking.actions import record_events, set_first_touch
from embudo.tracking.events import UTM_FIELDS
from embudo.tracking.models import EventSource

CHUNK = 5000
COLUMN_FIELDS = (
    "event_id",
    "type",
    "occurred_at",
    "contact_id",
    "email",
    "external_id",
    "visitor_id",
    "url",
    "referrer",
    *UTM_FIELDS,
)
ALIASES = {
    "event": "type",
    "eventtype": "type",
    "eventname": "type",
    "timestamp": "occurred_at",
    "time": "occurred_at",
    "date": "occurred_at",
    "datetime": "occurred_at",
    "occurred": "occurred_at",
    "contactemail": "email",
    "emailaddress": "email",
    "page": "url",
    "pageurl": "url",
    "referer": "referrer",
    "anonymousid": "visitor_id",
}


def run_events_import(
    source: CsvSource, options: ImportOptions, result: ImportResult, report: ErrorReport
) -> None:
    if connection.vendor == "sqlite":
        # A year of events is a big index build: let SQLite keep more of it in memory for
        # this connection (256 MB) rather than spill pages over and over.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size=-262144")
    rows = _ndjson_rows(source, report) if _is_ndjson(source) else _csv_rows(source, options)
    contacts: set[int] = set()
    accepted = duplicate = 0
    with progress_bar(options.progress, unit=" events", desc=_("Importing events")) as bar:
        lines: list[int] = []
        items: list[Any] = []
        keys: list[str] = []
        for line, item, key in rows:
            result.rows += 1
            lines.append(line)
            items.append(item)
            keys.append(key)
            if len(items) >= CHUNK:
                a, d = _write(items, lines, keys, options, report, contacts)
                accepted, duplicate = accepted + a, duplicate + d
                bar.update(len(items))
                lines, items, keys = [], [], []
        if items:
            a, d = _write(items, lines, keys, options, report, contacts)
            accepted, duplicate = accepted + a, duplicate + d
            bar.update(len(items))
    if result.rows == 0:
        raise ImportFileError(_("the file has no events"))
    # Rows come in any order: the original source is the earliest touch of the whole history.
    set_first_touch(contacts)
    result.created = accepted
    result.unchanged = duplicate
    result.counts = {"events_accepted": accepted, "events_duplicate": duplicate}
    # The contacts whose events changed (the pipeline heard of them from record_events).
    result.changed_ids = sorted(contacts)


def _write(
    items: list[Any],
    lines: list[int],
    keys: list[str],
    options: ImportOptions,
    report: ErrorReport,
    contacts: set[int],
) -> tuple[int, int]:
    timeless: list[int] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        if not item.get("occurred_at"):
            # History without a time would all land on today; that is a mistake in the file.
            timeless.append(index)
        elif "event_id" not in item:
            item["event_id"] = content_id(keys[index])
    for index in reversed(timeless):
        report.add(lines[index], "occurred_at", _("an imported event needs its occurred_at"))
        del items[index], lines[index]
    outcome = record_events(
        items, source=EventSource.IMPORT, actor=options.actor, first_touch=False
    )
    for error in outcome.errors:
        report.add(lines[error["index"]], error.get("field", ""), error["reason"])
    contacts.update(outcome.contact_ids)
    return outcome.accepted, outcome.duplicate


def content_id(content: str) -> str:
    """A stable event id from the row's text: 32 hex digits of a digest (any 128 bits make a
    valid UUID), so a re-import finds the same ids and stores nothing twice."""
    return hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


def _is_ndjson(source: CsvSource) -> bool:
    if source.path.suffix.lower() in {".ndjson", ".jsonl"}:
        return True
    with open(source.path, "rb") as raw:
        for line in raw:
            if line.strip():
                return line.lstrip().lstrip(b"\xef\xbb\xbf").startswith(b"{")
    return False


def _ndjson_rows(source: CsvSource, report: ErrorReport) -> Iterator[tuple[int, Any, str]]:
    with open(source.path, encoding="utf-8-sig") as text:
        for number, line in enumerate(text, start=1):
            content = line.strip()
            if not content:
                continue
            try:
                item = json.loads(content)
            except ValueError as error:
                report.add(number, "", _("the line is not valid JSON: %s") % error)
                continue
            yield number, item, content


def _csv_rows(
    source: CsvSource, options: ImportOptions
) -> Iterator[tuple[int, dict[str, Any], str]]:
    targets = _map_header(source.header, options)
    fields = [(i, name) for i, name in targets if not name.startswith("properties.")]
    props = [(i, name[11:]) for i, name in targets if name.startswith("properties.")]
    int_columns = {index for index, name in targets if name == "contact_id"}
    for record in source.records():
        values = record.values
        width = len(values)
        item: dict[str, Any] = {}
        for index, name in fields:
            if index < width and (raw := values[index].strip()):
                if index in int_columns and raw.isdigit():
                    item[name] = int(raw)
                else:
                    item[name] = raw
        if props:
            properties = {
                name: raw
                for index, name in props
                if index < width and (raw := values[index].strip())
            }
            if properties:
                item["properties"] = properties
        yield record.line, item, "\x1f".join(values)


def _map_header(header: list[str], options: ImportOptions) -> list[tuple[int, str]]:
    """(column index, target) for each named column: an event field, or ``properties.NAME``."""
    mapping = {normalize_header(k): v.strip() for k, v in options.mapping.items()}
    id_column = normalize_header(options.id_column) if options.id_column else None
    known = {normalize_header(name): name for name in COLUMN_FIELDS}
    targets: list[tuple[int, str]] = []
    seen: dict[str, str] = {}
    for index, name in enumerate(header):
        if not name:
            continue
        key = normalize_header(name)
        if key in mapping:
            target = mapping[key]
            if target == "-":
                continue
            if target not in COLUMN_FIELDS and not target.startswith("properties."):
                raise ImportFileError(
                    _("--map sends %(col)r to %(field)r, which is not an event field (%(all)s)")
                    % {"col": name, "field": target, "all": ", ".join(COLUMN_FIELDS)}
                )
        elif key == id_column:
            target = "external_id"
        elif key in known:
            target = known[key]
        elif key in ALIASES:
            target = ALIASES[key]
        elif key.startswith("properties") and len(key) > 10:
            target = "properties." + name.split(".", 1)[-1].strip()
        else:
            target = "properties." + name.strip()
        if target in seen and not target.startswith("properties."):
            raise ImportFileError(
                _("columns %(a)r and %(b)r both hold %(field)s")
                % {"a": seen[target], "b": name, "field": target}
            )
        seen[target] = name
        targets.append((index, target))
    if "type" not in seen:
        raise ImportFileError(
            _("the file has no event type column (type, event or event_type); it has: %s")
            % ", ".join(h for h in header if h)
        )
    return targets


register_importer(
    Importer(
        kind="events",
        run=run_events_import,
        description=gettext_lazy(
            "events (CSV or NDJSON): type, occurred_at, email / external_id / contact_id, url, "
            "utm_*; other columns become event properties"
        ),
    )
)
