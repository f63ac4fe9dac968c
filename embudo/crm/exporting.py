"""CSV export of contacts and companies, streamed a chunk of records at a time.

An export's columns come in groups: the built-in fields, the lifecycle stage dates, the custom
properties, and whatever other apps add (scores, persona, journey stage…) with
:func:`register_columns`. A group fills a whole chunk of records at once, so it costs one query
per chunk, never one per record. The headers match what `embudo import` reads, so an export can
be imported back; columns Embudo computes (ids, scores…) are marked read-only and skipped there.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.db.models import Min, Model, Q, QuerySet
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor, Viewer
from embudo.crm.models import (
    Company,
    Contact,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
)
from embudo.errors import EmbudoError

CHUNK_SIZE = 2000


class ExportError(EmbudoError):
    """The export cannot run (an unknown kind, say); the message says why."""


@dataclass(frozen=True)
class ColumnGroup:
    """Some columns of an export.

    ``headers`` is called once per export (custom properties are only known then); ``values``
    gets a chunk of records and those headers and returns one sequence of cell values per
    record, in order. ``read_only`` columns are computed by Embudo and not imported back.
    """

    name: str
    headers: Callable[[], Sequence[str]]
    values: Callable[[Sequence[Any], Sequence[str]], Iterable[Sequence[Any]]]
    read_only: bool = True


@dataclass
class Exporter:
    kind: str
    queryset: Callable[[], QuerySet[Any]]
    groups: list[ColumnGroup] = field(default_factory=list)
    # The records a user may see, for exports made on someone's behalf.
    visible_to: Callable[[Any], Q] | None = None


EXPORTERS: dict[str, Exporter] = {}


def register_exporter(exporter: Exporter) -> Exporter:
    EXPORTERS[exporter.kind] = exporter
    return exporter


def register_columns(kind: str, group: ColumnGroup) -> None:
    """Add a group of columns to exports of ``kind``, before the custom properties.

    Call it from your app's ``exporting`` module; registering a group name twice replaces it.
    """
    groups = EXPORTERS[kind].groups
    names = [g.name for g in groups]
    if group.name in names:
        groups[names.index(group.name)] = group
        return
    position = names.index("properties") if "properties" in names else len(groups)
    groups.insert(position, group)


def discover_exporters() -> dict[str, Exporter]:
    """Import every installed app's ``exporting`` module: each registers its kinds and columns."""
    autodiscover_modules("exporting")
    return EXPORTERS


def read_only_headers(kind: str) -> list[str]:
    """Headers of the columns Embudo computes, which an import of ``kind`` skips."""
    exporter = discover_exporters().get(kind)
    if exporter is None:
        return []
    return [h for g in exporter.groups if g.read_only for h in g.headers()]


def export_csv(
    kind: str,
    out: IO[str],
    *,
    delimiter: str = ",",
    user: Viewer | None = None,
    actor: Actor = None,
    chunk_size: int = CHUNK_SIZE,
    where: Q | None = None,
) -> int:
    """Write every record of ``kind`` (those ``user`` may see, when given; those matching
    ``where``, a segment's members say, when given) as CSV to ``out``; returns the number of
    records written."""
    exporter = discover_exporters().get(kind)
    if exporter is None:
        raise ExportError(
            _("unknown kind %(kind)r; Embudo can export: %(kinds)s")
            % {"kind": kind, "kinds": ", ".join(sorted(EXPORTERS))}
        )
    query = exporter.queryset()
    if user is not None and exporter.visible_to is not None:
        query = query.filter(exporter.visible_to(user))
    if where is not None:
        query = query.filter(where)
    groups = [(group, list(group.headers())) for group in exporter.groups]
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([header for _group, headers in groups for header in headers])
    count = 0
    for chunk in _batches(query.iterator(chunk_size=chunk_size), chunk_size):
        parts = [list(group.values(chunk, headers)) for group, headers in groups]
        for index in range(len(chunk)):
            writer.writerow([_cell(value) for part in parts for value in part[index]])
        count += len(chunk)
    record_audit("export", kind[:32], actor=actor, changes={"rows": count})
    return count


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cell(value: Any) -> str:
    """A value as `embudo import` reads it back: ISO dates in UTC, true/false, blank for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# -- column groups shared by contacts and companies ---------------------------------------------


def _attribute_group(
    name: str, columns: Sequence[tuple[str, Callable[[Any], Any]]], *, read_only: bool
) -> ColumnGroup:
    headers = [header for header, _get in columns]
    getters = [get for _header, get in columns]
    return ColumnGroup(
        name=name,
        headers=lambda: headers,
        values=lambda chunk, _headers: ([get(obj) for get in getters] for obj in chunk),
        read_only=read_only,
    )


def _properties_group(object_type: str) -> ColumnGroup:
    def headers() -> list[str]:
        return list(
            PropertyDefinition.objects.filter(object_type=object_type)
            .order_by("name")
            .values_list("name", flat=True)
        )

    def values(chunk: Sequence[Model], names: Sequence[str]) -> Iterator[list[Any]]:
        for obj in chunk:
            properties = obj.properties or {}  # type: ignore[attr-defined]
            yield [properties.get(name) for name in names]

    return ColumnGroup("properties", headers, values, read_only=False)


def _owner(obj: Contact | Company) -> str:
    return obj.owner.get_username() if obj.owner_id else ""  # type: ignore[union-attr]


# -- contacts -----------------------------------------------------------------------------------


STAGE_DATE_HEADERS = {stage: f"became_{stage}_at" for stage in LifecycleStage.values}


def _stage_dates_group() -> ColumnGroup:
    """When each contact first entered each stage, from the lifecycle history."""

    def values(chunk: Sequence[Contact], _headers: Sequence[str]) -> Iterator[list[Any]]:
        first: dict[int, dict[str, dt.datetime]] = defaultdict(dict)
        rows = (
            LifecycleTransition.objects.filter(contact_id__in=[c.pk for c in chunk])
            .order_by()
            .values("contact_id", "to_stage")
            .annotate(at=Min("changed_at"))
            .values_list("contact_id", "to_stage", "at")
        )
        for contact_id, stage, at in rows:
            first[contact_id][stage] = at
        for contact in chunk:
            dates = first.get(contact.pk, {})
            yield [dates.get(stage) for stage in STAGE_DATE_HEADERS]

    return ColumnGroup(
        "stage_dates", lambda: list(STAGE_DATE_HEADERS.values()), values, read_only=False
    )


def _contact_visibility(user: Viewer) -> Q:
    from embudo.accounts.roles import contact_visibility

    return contact_visibility(user)


register_exporter(
    Exporter(
        kind="contacts",
        queryset=lambda: Contact.objects.select_related("company", "owner").order_by("pk"),
        visible_to=_contact_visibility,
        groups=[
            _attribute_group("record", [("embudo_id", lambda c: c.pk)], read_only=True),
            _attribute_group(
                "fields",
                [
                    ("email", lambda c: c.email),
                    ("external_id", lambda c: c.external_id),
                    ("first_name", lambda c: c.first_name),
                    ("last_name", lambda c: c.last_name),
                    ("phone", lambda c: c.phone),
                    ("job_title", lambda c: c.job_title),
                    ("company", lambda c: c.company.name if c.company_id else ""),
                    ("company_domain", lambda c: c.company.domain if c.company_id else ""),
                    ("owner", _owner),
                    ("lifecycle_stage", lambda c: c.lifecycle_stage),
                    ("lead_status", lambda c: c.lead_status),
                    ("original_source", lambda c: c.original_source),
                    ("original_medium", lambda c: c.original_medium),
                    ("original_campaign", lambda c: c.original_campaign),
                    ("created_at", lambda c: c.created_at),
                ],
                read_only=False,
            ),
            _attribute_group("updated", [("updated_at", lambda c: c.updated_at)], read_only=True),
            _stage_dates_group(),
            _properties_group(ObjectType.CONTACT),
        ],
    )
)


# -- companies ----------------------------------------------------------------------------------


register_exporter(
    Exporter(
        kind="companies",
        queryset=lambda: Company.objects.select_related("owner").order_by("pk"),
        groups=[
            _attribute_group("record", [("embudo_id", lambda c: c.pk)], read_only=True),
            _attribute_group(
                "fields",
                [
                    ("name", lambda c: c.name),
                    ("domain", lambda c: c.domain),
                    ("external_id", lambda c: c.external_id),
                    ("industry", lambda c: c.industry),
                    ("employees", lambda c: c.employees),
                    ("country", lambda c: c.country),
                    ("city", lambda c: c.city),
                    ("owner", _owner),
                    ("created_at", lambda c: c.created_at),
                ],
                read_only=False,
            ),
            _attribute_group("updated", [("updated_at", lambda c: c.updated_at)], read_only=True),
            _properties_group(ObjectType.COMPANY),
        ],
    )
)
