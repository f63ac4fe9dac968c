"""CSV import of contacts and companies: their fields as other tools name them, their custom
properties, companies found by external id, domain or name, and the lifecycle history rebuilt
from stage-date columns; through the engine in :mod:`embudo.csvimport`. Once an import commits,
the reaction pipeline hears of the whole run as history (see :mod:`embudo.pipeline`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.models import Model, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo import pipeline
from embudo.accounts.actors import Actor
from embudo.crm.actions import CONTACT_FIELDS, define_property
from embudo.crm.models import (
    FUNNEL_ORDER,
    Company,
    Contact,
    LeadStatus,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
    TransitionCause,
)
from embudo.crm.properties import (
    PropertyValueError,
    coerce,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_number,
    property_name,
)
from embudo.csvimport.cells import (
    RowValueError,
    choice_parser,
    owner_parser,
    parse_domain,
    parse_email,
    text,
)
from embudo.csvimport.mapping import FieldSpec, normalize_header
from embudo.csvimport.run import Importer, register_importer
from embudo.csvimport.table import ParsedRow, TableImport, run_table
from embudo.db.bulk import insert_rows, update_rows

# -- custom properties --------------------------------------------------------------------------

# Custom-property types a column can be inferred as, narrowest first (as properties.infer_type).
_TYPE_PARSERS: dict[str, Callable[[str], Any]] = {
    PropertyType.BOOLEAN: parse_boolean,
    PropertyType.NUMBER: parse_number,
    PropertyType.DATE: parse_date,
}


class RecordProperties:
    """The custom properties of contacts or companies (``object_type``), as the import engine
    fills them: see :class:`embudo.csvimport.mapping.CustomProperties`."""

    inferable: tuple[str, ...] = tuple(_TYPE_PARSERS)
    fallback: str = PropertyType.TEXT
    overridable: tuple[str, ...] = (
        PropertyType.TEXT,
        PropertyType.NUMBER,
        PropertyType.BOOLEAN,
        PropertyType.DATE,
    )

    def __init__(self, object_type: str) -> None:
        self.object_type = object_type

    def name(self, header: str) -> str:
        return property_name(header)

    def declared(self) -> dict[str, tuple[str, list[str]]]:
        definitions = PropertyDefinition.objects.filter(object_type=self.object_type)
        return {d.name: (d.type, list(d.choices or [])) for d in definitions}

    def reserved(self) -> set[str]:
        """The model's own fields (as define_property says)."""
        model: type[Model] = Contact if self.object_type == ObjectType.CONTACT else Company
        names = {f.name for f in model._meta.get_fields()}
        return names | {n.removesuffix("_id") for n in names} | {"id", "pk"}

    def fits(self, type_: str, raw: str) -> bool:
        try:
            _TYPE_PARSERS[type_](raw)
        except PropertyValueError:
            return False
        return True

    def coerce(self, raw: str, type_: str, choices: list[str]) -> Any:
        return coerce(raw, type_, choices)

    def define(self, name: str, type_: str, *, label: str, actor: Actor) -> None:
        define_property(self.object_type, name, type_, label=label, actor=actor)


# -- cell parsers -------------------------------------------------------------------------------


def _max_length(model: type[Model], name: str) -> int:
    return int(model._meta.get_field(name).max_length or 255)  # type: ignore[union-attr]


def parse_when(raw: str) -> dt.datetime:
    try:
        return parse_datetime(raw)
    except ValueError:
        raise RowValueError(
            _("%r is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM)") % raw
        ) from None


def _stage_names() -> dict[str, str]:
    names = {normalize_header(value): value for value in LifecycleStage.values}
    names.update(
        {
            "marketingqualifiedlead": LifecycleStage.MQL,
            "marketingqualified": LifecycleStage.MQL,
            "salesqualifiedlead": LifecycleStage.SQL,
            "salesqualified": LifecycleStage.SQL,
            "suscriptor": LifecycleStage.SUBSCRIBER,
            "oportunidad": LifecycleStage.OPPORTUNITY,
            "cliente": LifecycleStage.CUSTOMER,
            "evangelizador": LifecycleStage.EVANGELIST,
            "descalificado": LifecycleStage.DISQUALIFIED,
        }
    )
    return names


STAGE_NAMES = _stage_names()
LEAD_STATUS_NAMES = {
    **{normalize_header(value): value for value in LeadStatus.values},
    "open": LeadStatus.NEW,
    "attemptedtocontact": LeadStatus.ATTEMPTING,
    "inprogress": LeadStatus.CONNECTED,
    "opendeal": LeadStatus.QUALIFIED,
    "badtiming": LeadStatus.RECYCLED,
    "contacted": LeadStatus.CONNECTED,
    "nuevo": LeadStatus.NEW,
    "cualificado": LeadStatus.QUALIFIED,
    "nocualificado": LeadStatus.UNQUALIFIED,
}


def stage_of_date_column(key: str) -> str | None:
    """The stage a date column records: ``became_mql_at``, "Became a Customer Date"…"""
    if not key.startswith("became"):
        return None
    rest = key.removeprefix("became")
    for suffix in ("date", "at", "on"):
        if rest.endswith(suffix) and rest[: -len(suffix)]:
            rest = rest[: -len(suffix)]
            break
    for article in ("", "an", "a"):
        if rest.startswith(article) and (stage := STAGE_NAMES.get(rest[len(article) :])):
            return stage
    return None


def _funnel_rank(stage: str) -> int:
    return FUNNEL_ORDER.index(stage) if stage in FUNNEL_ORDER else len(FUNNEL_ORDER)


# -- after an import ----------------------------------------------------------------------------


# -- companies looked up by name, domain or external id -----------------------------------------


class CompanyIndex:
    """Companies by external id, domain and name (case-insensitive), loaded a chunk at a time.

    Names are compared lower-cased in Python; SQLite's LOWER() folds ASCII only, so names are
    also looked up as written, which finds non-ASCII names stored with the same spelling.
    """

    def __init__(self) -> None:
        self.by_external_id: dict[str, list[Company]] = {}
        self.by_domain: dict[str, list[Company]] = {}
        self.by_name: dict[str, list[Company]] = {}
        self._loaded: set[tuple[str, str]] = set()

    def load(
        self,
        *,
        external_ids: Iterable[str] = (),
        domains: Iterable[str] = (),
        names: Iterable[str] = (),
    ) -> None:
        wanted_ids = sorted({v for v in external_ids if ("x", v) not in self._loaded})
        wanted_domains = sorted({v for v in domains if ("d", v) not in self._loaded})
        wanted_names = {v for v in names if ("n", v.lower()) not in self._loaded}
        lowered = sorted({v.lower() for v in wanted_names})
        query = Q(pk__in=[])
        if wanted_ids:
            query |= Q(external_id__in=wanted_ids)
        if wanted_domains:
            query |= Q(domain__in=wanted_domains)
        if wanted_names:
            query |= Q(lname__in=lowered) | Q(name__in=sorted(wanted_names))
        if wanted_ids or wanted_domains or wanted_names:
            for company in (
                Company.objects.annotate(lname=Lower("name")).filter(query).order_by("pk")
            ):
                self.add(company)
        self._loaded.update(("x", v) for v in wanted_ids)
        self._loaded.update(("d", v) for v in wanted_domains)
        self._loaded.update(("n", v) for v in lowered)

    def add(self, company: Company) -> None:
        for index, key in (
            (self.by_external_id, company.external_id),
            (self.by_domain, company.domain),
            (self.by_name, company.name.lower()),
        ):
            if key:
                found = index.setdefault(key, [])
                if company not in found:
                    found.append(company)

    def forget(self, company: Company, external_id: str | None, domain: str, name: str) -> None:
        """Drop a company's old keys before it changes them."""
        for index, key in (
            (self.by_external_id, external_id),
            (self.by_domain, domain),
            (self.by_name, name.lower()),
        ):
            if key and company in index.get(key, []):
                index[key].remove(company)


# -- contacts -----------------------------------------------------------------------------------


def _export_read_only(kind: str) -> list[str]:
    from embudo.crm.exporting import read_only_headers

    return read_only_headers(kind)


class ContactImport(TableImport):
    """Contacts, updated or created by external id or email; their company linked or created by
    domain or name; their lifecycle history rebuilt from stage-date columns."""

    noun = "contacts"

    def custom_properties(self) -> RecordProperties:
        return RecordProperties(ObjectType.CONTACT)

    def field_specs(self) -> dict[str, FieldSpec]:
        length = lambda name: _max_length(Contact, name)  # noqa: E731 - a local shorthand
        return {
            spec.name: spec
            for spec in (
                FieldSpec("email", parse_email, ("e-mail", "email address", "mail", "correo")),
                FieldSpec("external_id", text(length("external_id")), ("externalid",)),
                FieldSpec(
                    "first_name", text(length("first_name")), ("first", "given name", "nombre")
                ),
                FieldSpec(
                    "last_name",
                    text(length("last_name")),
                    ("last", "surname", "family name", "apellido", "apellidos"),
                ),
                FieldSpec(
                    "phone",
                    text(length("phone")),
                    ("phone number", "telephone", "telefono"),
                ),
                FieldSpec(
                    "job_title", text(length("job_title")), ("title", "position", "cargo", "puesto")
                ),
                FieldSpec(
                    "company",
                    text(_max_length(Company, "name")),
                    ("company name", "organization", "organisation", "account name", "empresa"),
                ),
                FieldSpec(
                    "company_domain",
                    parse_domain,
                    ("company domain name", "company website", "website domain"),
                ),
                FieldSpec(
                    "owner",
                    owner_parser(),
                    ("contact owner", "lead owner", "owner username", "owner email"),
                ),
                FieldSpec(
                    "lifecycle_stage",
                    choice_parser(STAGE_NAMES, _("lifecycle stage")),
                    ("lifecycle", "etapa del ciclo de vida"),
                ),
                FieldSpec(
                    "lead_status",
                    choice_parser(LEAD_STATUS_NAMES, _("lead status")),
                    ("estado del lead",),
                ),
                FieldSpec(
                    "original_source", text(length("original_source")), ("lead source", "source")
                ),
                FieldSpec("original_medium", text(length("original_medium")), ("medium",)),
                FieldSpec("original_campaign", text(length("original_campaign")), ()),
                FieldSpec(
                    "created_at",
                    parse_when,
                    ("create date", "created", "created date", "date created"),
                ),
            )
        }

    def stage_of(self, key: str) -> str | None:
        return stage_of_date_column(key)

    def parse_stage_date(self, raw: str) -> dt.datetime:
        return parse_when(raw)

    def read_only_columns(self) -> Iterable[str]:
        return _export_read_only("contacts")

    key_labels = {"email": gettext_lazy("email"), "external_id": gettext_lazy("external id")}

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        fields = row.fields
        if "email" in fields:
            yield "email", fields["email"]
        if "external_id" in fields:
            yield "external_id", fields["external_id"]

    def run(self) -> None:
        self.companies = CompanyIndex()
        self.result.counts.update(companies_created=0, transitions=0)
        # The contacts whose stage the import set, by stage: told once the import commits.
        self.moved: dict[str, set[int]] = defaultdict(set)
        super().run()
        # The pipeline hears of the whole run once it commits, not of each record: imports skip
        # the per-record side effects of crm.actions (owner notifications) on purpose, and its
        # reactions know an import's moments as history, not news.
        pipeline.contacts_imported(self.result.changed_ids)
        for stage, ids in self.moved.items():
            pipeline.stage_changed(stage, ids, imported=True)

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        emails = [r.fields["email"] for r in rows if "email" in r.fields]
        external_ids = [r.fields["external_id"] for r in rows if "external_id" in r.fields]
        # Stored contacts as plain dicts (model instances cost more to build than to fetch),
        # one dict per contact however many keys found it.
        found: dict[int, dict[str, Any]] = {}
        by_email: dict[str, dict[str, Any]] = {}
        by_external_id: dict[str, dict[str, Any]] = {}
        if emails:
            for stored in Contact.objects.filter(email__in=emails).values(*_CONTACT_LOADED):
                by_email[stored["email"]] = found.setdefault(stored["id"], stored)
        if external_ids:
            query = Contact.objects.filter(external_id__in=external_ids).values(*_CONTACT_LOADED)
            for stored in query:
                by_external_id[stored["external_id"]] = found.setdefault(stored["id"], stored)
        company_ids = self._companies(rows)

        # Each row is matched to at most one stored contact, or will create one.
        matched: list[tuple[ParsedRow, dict[str, Any] | None]] = []
        for row in rows:
            email, external_id = row.fields.get("email"), row.fields.get("external_id")
            by_x = by_external_id.get(external_id) if external_id else None
            by_e = by_email.get(email) if email else None
            if by_x and by_e and by_x["id"] != by_e["id"]:
                self.report.add(
                    row.line,
                    self.headers.get("email", ""),
                    _(
                        "external id %(x)s belongs to contact %(a)s but email %(e)s to contact "
                        "%(b)s; merge them first or fix the row"
                    )
                    % {"x": external_id, "e": email, "a": by_x["id"], "b": by_e["id"]},
                )
                continue
            stored = by_x or by_e
            if stored and external_id and stored["external_id"] not in (None, external_id):
                self.report.add(
                    row.line,
                    self.headers.get("external_id", ""),
                    _("email %(e)s belongs to a contact whose external id is %(old)s, not %(x)s")
                    % {"e": email, "old": stored["external_id"], "x": external_id},
                )
                continue
            matched.append((row, stored))

        history = self._history([c["id"] for r, c in matched if c is not None and r.stage_dates])
        creates: list[tuple[dict[str, Any], list[tuple[str, str, dt.datetime]]]] = []
        updates: dict[int, dict[str, Any]] = {}
        changed_fields: set[str] = set()
        transitions: list[tuple[int, str, str, dt.datetime]] = []
        for row, stored in matched:
            values = self._values(row, company_ids)
            if stored is None:
                creates.append(self._new_contact(row, values))
                continue
            changed = self._apply(stored, row, values, history.get(stored["id"], []), transitions)
            if "lifecycle_stage" in changed:
                self.moved[stored["lifecycle_stage"]].add(stored["id"])
            if changed:
                stored["updated_at"] = self.now
                changed_fields.update(changed)
                updates[stored["id"]] = stored
            elif stored["id"] not in updates:
                self.result.unchanged += 1

        if creates:
            ids = insert_rows(
                Contact, _CONTACT_INSERTED, [[c[f] for f in _CONTACT_INSERTED] for c, _m in creates]
            )
            for contact_id, (contact, moves) in zip(ids, creates, strict=True):
                transitions.extend((contact_id, *move) for move in moves)
                self.moved[contact["lifecycle_stage"]].add(contact_id)
            self.result.changed_ids.extend(ids)
        if updates:
            fields = sorted(changed_fields | {"updated_at"})
            update_rows(
                Contact, fields, [(pk, [c[f] for f in fields]) for pk, c in updates.items()]
            )
            self.result.changed_ids.extend(updates)
        if transitions:
            actor = _user_id(self.options.actor)
            insert_rows(
                LifecycleTransition,
                ("contact_id", "from_stage", "to_stage", "changed_at", "cause", "actor_id", "note"),
                [(*move, TransitionCause.IMPORT, actor, "") for move in transitions],
                returning=False,
            )
        self.result.created += len(creates)
        self.result.updated += len(updates)
        self.result.counts["transitions"] += len(transitions)

    def _companies(self, rows: list[ParsedRow]) -> dict[int, int]:
        """The company id each row links to (by line), creating missing companies in bulk."""
        wanted = [r for r in rows if "company" in r.fields or "company_domain" in r.fields]
        if not wanted:
            return {}
        index = self.companies
        index.load(
            domains=[r.fields["company_domain"] for r in wanted if "company_domain" in r.fields],
            names=[r.fields["company"] for r in wanted if "company" in r.fields],
        )
        links: dict[int, int] = {}
        # Companies to create, by domain and by name, so two rows naming one new company
        # create it once.
        new = CompanyIndex()
        created: list[Company] = []
        waiting: list[tuple[int, Company]] = []
        for row in wanted:
            name, domain = row.fields.get("company", ""), row.fields.get("company_domain", "")
            found = (index.by_domain.get(domain) if domain else None) or (
                index.by_name.get(name.lower()) if name else None
            )
            if found:
                links[row.line] = found[0].pk
                continue
            pending = (new.by_domain.get(domain) if domain else None) or (
                new.by_name.get(name.lower()) if name else None
            )
            if pending:
                company = pending[0]
            else:
                company = Company(
                    name=name or domain, domain=domain, created_at=self.now, updated_at=self.now
                )
                new.add(company)
                created.append(company)
            waiting.append((row.line, company))
        if created:
            insert_companies(created)
            for company in created:
                index.add(company)
            self.result.counts["companies_created"] += len(created)
            for line, company in waiting:
                links[line] = company.pk
        return links

    def _history(self, contact_ids: list[int]) -> dict[int, list[tuple[dt.datetime, str]]]:
        history: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        if contact_ids:
            rows = LifecycleTransition.objects.filter(contact_id__in=contact_ids)
            for contact_id, at, stage in rows.values_list("contact_id", "changed_at", "to_stage"):
                history[contact_id].append((at, stage))
        return history

    def _values(self, row: ParsedRow, company_ids: dict[int, int]) -> dict[str, Any]:
        values = {
            name: value
            for name, value in row.fields.items()
            if name not in {"company", "company_domain", "owner", "lifecycle_stage", "created_at"}
        }
        if row.line in company_ids:
            values["company_id"] = company_ids[row.line]
        if "owner" in row.fields:
            values["owner_id"] = row.fields["owner"]
        return values

    def _new_contact(
        self, row: ParsedRow, values: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str, dt.datetime]]]:
        """The new contact's columns, and its moves (from, to, when) in time order."""
        dated = sorted(row.stage_dates, key=lambda s: (s[1], _funnel_rank(s[0])))
        created_at = row.fields.get("created_at") or (dated[0][1] if dated else self.now)
        target = row.fields.get("lifecycle_stage") or (
            dated[-1][0] if dated else LifecycleStage.SUBSCRIBER
        )
        moves: list[tuple[str, str, dt.datetime]] = []
        stage = ""
        for to_stage, at in dated:
            if to_stage != stage:
                moves.append((stage, to_stage, at))
                stage = to_stage
        if target != stage:
            moves.append((stage, target, self.now if moves else created_at))
        contact = {
            **_CONTACT_DEFAULTS,
            **values,
            "properties": row.properties,
            "lifecycle_stage": target,
            "lifecycle_stage_changed_at": moves[-1][2],
            "created_at": created_at,
            "updated_at": self.now,
        }
        return contact, moves

    def _apply(
        self,
        contact: dict[str, Any],
        row: ParsedRow,
        values: dict[str, Any],
        history: list[tuple[dt.datetime, str]],
        transitions: list[tuple[int, str, str, dt.datetime]],
    ) -> set[str]:
        """Change the stored ``contact`` to match the row; the names of the fields that changed."""
        changed: set[str] = set()
        for name, value in values.items():
            if contact[name] != value:
                contact[name] = value
                changed.add(name)
        if row.properties:
            merged = {**contact["properties"], **row.properties}
            if merged != contact["properties"]:
                contact["properties"] = merged
                changed.add("properties")
        # Dated stages the history lacks join it in time order; then the contact moves to the
        # stage the row names, or to where the merged history ends.
        pk = contact["id"]
        known = set(history)
        timeline = sorted(history, key=lambda h: (h[0], _funnel_rank(h[1])))
        for stage, at in sorted(row.stage_dates, key=lambda s: (s[1], _funnel_rank(s[0]))):
            if (at, stage) in known:
                continue
            before = [h for h in timeline if (h[0], _funnel_rank(h[1])) < (at, _funnel_rank(stage))]
            transitions.append((pk, before[-1][1] if before else "", stage, at))
            timeline.insert(len(before), (at, stage))
        current, changed_at = contact["lifecycle_stage"], contact["lifecycle_stage_changed_at"]
        end_stage, end_at = current, changed_at
        if timeline and timeline[-1][0] > changed_at:
            end_at, end_stage = timeline[-1]
        target = row.fields.get("lifecycle_stage") or end_stage
        if target != end_stage:
            transitions.append((pk, end_stage, target, self.now))
            end_at = self.now
        if target != current:
            contact["lifecycle_stage"] = target
            contact["lifecycle_stage_changed_at"] = end_at
            changed.update({"lifecycle_stage", "lifecycle_stage_changed_at"})
        return changed


# The contact columns an import reads and writes are the ones the contact actions accept.
_CONTACT_FIELDS = CONTACT_FIELDS
_CONTACT_DEFAULTS: dict[str, Any] = {
    name: None if name in {"email", "external_id", "company_id", "owner_id"} else ""
    for name in _CONTACT_FIELDS
}
_CONTACT_LOADED = (
    "id",
    *_CONTACT_FIELDS,
    "properties",
    "lifecycle_stage",
    "lifecycle_stage_changed_at",
)
_CONTACT_INSERTED = (
    *_CONTACT_FIELDS,
    "properties",
    "lifecycle_stage",
    "lifecycle_stage_changed_at",
    "created_at",
    "updated_at",
)


def _user_id(actor: Actor) -> int | None:
    return actor.pk if actor is not None else None


_COMPANY_INSERTED = (
    "name",
    "domain",
    "external_id",
    "industry",
    "employees",
    "country",
    "city",
    "owner_id",
    "properties",
    "created_at",
    "updated_at",
)


def insert_companies(companies: Sequence[Company]) -> None:
    """Insert new Company instances, setting their ids."""
    ids = insert_rows(
        Company, _COMPANY_INSERTED, [[getattr(c, f) for f in _COMPANY_INSERTED] for c in companies]
    )
    for company, pk in zip(companies, ids, strict=True):
        company.pk = pk


# -- companies ----------------------------------------------------------------------------------


def parse_employees(raw: str) -> int:
    try:
        value = parse_number(raw)
    except PropertyValueError:
        value = -1
    if not isinstance(value, int) or not 0 <= value <= 2_147_483_647:
        raise RowValueError(_("%r is not a whole number of employees") % raw)
    return value


class CompanyImport(TableImport):
    """Companies, updated or created by external id, else domain, else name."""

    noun = "companies"

    def custom_properties(self) -> RecordProperties:
        return RecordProperties(ObjectType.COMPANY)

    def field_specs(self) -> dict[str, FieldSpec]:
        length = lambda name: _max_length(Company, name)  # noqa: E731 - a local shorthand
        return {
            spec.name: spec
            for spec in (
                FieldSpec(
                    "name",
                    text(length("name")),
                    ("company", "company name", "organization", "organisation", "account name"),
                ),
                FieldSpec(
                    "domain", parse_domain, ("company domain", "company domain name", "website")
                ),
                FieldSpec("external_id", text(length("external_id")), ("externalid",)),
                FieldSpec("industry", text(length("industry")), ("sector", "industria")),
                FieldSpec(
                    "employees",
                    parse_employees,
                    ("number of employees", "employee count", "size", "headcount", "empleados"),
                ),
                FieldSpec("country", text(length("country")), ("country region", "pais")),
                FieldSpec("city", text(length("city")), ("town", "ciudad")),
                FieldSpec("owner", owner_parser(), ("company owner", "account owner")),
                FieldSpec("created_at", parse_when, ("create date", "created", "created date")),
            )
        }

    def read_only_columns(self) -> Iterable[str]:
        return _export_read_only("companies")

    key_labels = {
        "external_id": gettext_lazy("external id"),
        "domain": gettext_lazy("domain"),
        "name": gettext_lazy("company name"),
    }

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        if external_id := row.fields.get("external_id"):
            yield "external_id", external_id
        elif domain := row.fields.get("domain"):
            yield "domain", domain
        elif name := row.fields.get("name"):
            yield "name", name.lower()

    def run(self) -> None:
        self.index = CompanyIndex()
        super().run()
        pipeline.companies_changed(self.result.changed_ids)

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        index = self.index
        index.load(
            external_ids=[r.fields["external_id"] for r in rows if "external_id" in r.fields],
            domains=[r.fields["domain"] for r in rows if "domain" in r.fields],
            names=[r.fields["name"] for r in rows if "name" in r.fields],
        )
        creates: list[Company] = []
        updates: dict[int, Company] = {}
        changed_fields: set[str] = set()
        for row in rows:
            ok, company = self._match(row)
            if not ok:
                continue
            values = {k: v for k, v in row.fields.items() if k not in {"owner", "created_at"}}
            if "owner" in row.fields:
                values["owner_id"] = row.fields["owner"]
            if company is None:
                if not values.get("name"):
                    self.report.add(
                        row.line,
                        self.headers.get("name") or "name",
                        _("no company matches this row, and a new company needs a name"),
                    )
                    continue
                company = Company(
                    **values,
                    properties=row.properties,
                    created_at=row.fields.get("created_at") or self.now,
                    updated_at=self.now,
                )
                creates.append(company)
                index.add(company)
                continue
            old_keys = (company.external_id, company.domain, company.name)
            changed = {name for name, value in values.items() if getattr(company, name) != value}
            for name in changed:
                setattr(company, name, values[name])
            if row.properties:
                merged = {**company.properties, **row.properties}
                if merged != company.properties:
                    company.properties = merged
                    changed.add("properties")
            if changed:
                index.forget(company, *old_keys)
                index.add(company)
                company.updated_at = self.now
                changed_fields.update(changed)
                updates[company.pk] = company
            elif company.pk not in updates:
                self.result.unchanged += 1
        if creates:
            insert_companies(creates)
            self.result.changed_ids.extend(c.pk for c in creates)
        if updates:
            fields = sorted(changed_fields | {"updated_at"})
            update_rows(
                Company,
                fields,
                [(pk, [getattr(c, f) for f in fields]) for pk, c in updates.items()],
            )
            self.result.changed_ids.extend(updates)
        self.result.created += len(creates)
        self.result.updated += len(updates)

    def _match(self, row: ParsedRow) -> tuple[bool, Company | None]:
        """(False, None) when the row is wrong (reported); else the stored company it updates,
        or None to create one."""
        external_id = row.fields.get("external_id")
        domain = row.fields.get("domain")
        name = row.fields.get("name")
        candidates: list[Company] = []
        how, column = "", ""
        if external_id and (found := self.index.by_external_id.get(external_id)):
            return True, found[0]
        if domain and (found := self.index.by_domain.get(domain)):
            candidates, how, column = found, _("the domain %s") % domain, "domain"
        elif name and not domain and (found := self.index.by_name.get(name.lower())):
            candidates, how, column = found, _("the name %r") % name, "name"
        if not candidates:
            return True, None
        if len(candidates) > 1:
            self.report.add(
                row.line,
                self.headers.get(column, ""),
                _(
                    "%(n)s companies have %(how)s; add an external_id or domain column to say "
                    "which one this row is"
                )
                % {"n": len(candidates), "how": how},
            )
            return False, None
        company = candidates[0]
        if external_id and company.external_id not in (None, external_id):
            self.report.add(
                row.line,
                self.headers.get("external_id", ""),
                _("the company with %(how)s has external id %(old)s, not %(new)s")
                % {"how": how, "old": company.external_id, "new": external_id},
            )
            return False, None
        if company.pk is None:
            # Created earlier in this same chunk; the file's duplicate check allows it only when
            # the keys differ (say a new external id with a domain already used above).
            self.report.add(
                row.line,
                self.headers.get(column, ""),
                _("another row of this file already creates the company with %s") % how,
            )
            return False, None
        return True, company


register_importer(
    Importer(
        "contacts",
        run_table(ContactImport),
        gettext_lazy("contacts, with their company, owner and lifecycle history"),
    )
)
register_importer(Importer("companies", run_table(CompanyImport), gettext_lazy("companies")))
