"""`embudo import deals FILE`: deals from another CRM's CSV export, through the shared import
engine (:mod:`embudo.csvimport`: encodings, delimiters, header mapping, row errors, one
transaction, dry run).

Other CRMs' column names are understood (HubSpot's "Deal Stage" and "Close Date", Salesforce's
"Opportunity Name" and "Stage", Pipedrive's "Value" and "Won time"…), stage names are matched
to the pipeline's stages ignoring case, spaces and punctuation, amounts may carry a currency
symbol and either decimal convention (``€1.234,50``, ``1,234.50 USD``), and dates come in the
common formats. Unknown stages, unparseable amounts or dates and currencies without an exchange
rate are row errors; a file with any of them changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo.crm import actions as crm_actions
from embudo.crm.importing import CompanyIndex
from embudo.crm.models import Contact, TransitionCause
from embudo.csvimport.cells import RowValueError, owner_parser, parse_domain, text
from embudo.csvimport.mapping import FIELD, FieldSpec, normalize_header
from embudo.csvimport.report import ErrorReport
from embudo.csvimport.run import Importer, ImportOptions, ImportResult, register_importer
from embudo.csvimport.source import CsvSource, Record
from embudo.csvimport.table import ParsedRow, TableImport, run_table
from embudo.deals import actions
from embudo.deals.models import (
    Deal,
    DealStatus,
    ForecastCategory,
    LostReason,
    Pipeline,
    ProductLine,
    Stage,
    StageKind,
)
from embudo.errors import ValidationFailed

# -- amounts ------------------------------------------------------------------------------------

_SYMBOLS = {
    "us$": "USD",
    "usd$": "USD",
    "ca$": "CAD",
    "c$": "CAD",
    "au$": "AUD",
    "a$": "AUD",
    "mx$": "MXN",
    "r$": "BRL",
    "nz$": "NZD",
    "hk$": "HKD",
    "s$": "SGD",
    "€": "EUR",
    "$": "USD",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "zł": "PLN",
    "kr": "SEK",
    "chf": "CHF",
}
_CODE = re.compile(r"[A-Za-z]{3}")
_GROUPING = re.compile(r"[\s\u00a0\u202f'\u2019]")


def parse_money(raw: str) -> tuple[Decimal, str | None]:
    """An amount and the currency written with it, if any: ``"€1.234,50"`` → (1234.50, EUR).

    With both ``.`` and ``,`` the later one is the decimal mark; a lone mark followed by exactly
    three digits groups thousands (``1,234`` and ``1.234`` are both one thousand two hundred
    thirty-four); otherwise it is the decimal mark.
    """
    text_ = raw.strip()
    currency: str | None = None
    lowered = text_.lower()
    for symbol in sorted(_SYMBOLS, key=len, reverse=True):
        if lowered.startswith(symbol) or lowered.endswith(symbol):
            currency = _SYMBOLS[symbol]
            text_ = text_[len(symbol) :] if lowered.startswith(symbol) else text_[: -len(symbol)]
            break
    else:
        parts = text_.split()
        if len(parts) >= 2 and _CODE.fullmatch(parts[-1]):
            currency, text_ = parts[-1].upper(), " ".join(parts[:-1])
        elif len(parts) >= 2 and _CODE.fullmatch(parts[0]):
            currency, text_ = parts[0].upper(), " ".join(parts[1:])
    text_ = _GROUPING.sub("", text_.strip())
    negative = text_.startswith("-") or (text_.startswith("(") and text_.endswith(")"))
    text_ = text_.strip("()").lstrip("+-")
    if not text_ or not re.fullmatch(r"[\d.,]+", text_) or not re.search(r"\d", text_):
        raise RowValueError(
            _("%r is not an amount (write it like 1234.50, 1,234.50, €1.234,50 or 1234 USD)") % raw
        )
    dots, commas = text_.count("."), text_.count(",")
    if dots and commas:
        decimal_mark = "." if text_.rfind(".") > text_.rfind(",") else ","
        grouping = "," if decimal_mark == "." else "."
        if text_.count(decimal_mark) > 1:
            raise RowValueError(_("%r is not an amount: two decimal marks") % raw)
        number = text_.replace(grouping, "").replace(decimal_mark, ".")
    elif dots + commas == 0:
        number = text_
    else:
        mark = "." if dots else ","
        count = dots or commas
        after = text_.rsplit(mark, 1)[1]
        if count > 1 or len(after) == 3:
            number = text_.replace(mark, "")
        else:
            number = text_.replace(mark, ".")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise RowValueError(_("%r is not an amount") % raw) from None
    if negative:
        raise RowValueError(_("%r is negative; a deal's amount is 0 or more") % raw)
    return value, currency


def parse_currency(raw: str) -> str:
    code = _SYMBOLS.get(raw.strip().lower(), raw.strip().upper())
    if not _CODE.fullmatch(code):
        raise RowValueError(_("%r is not a three-letter currency code (EUR, USD…)") % raw)
    return code


# -- dates --------------------------------------------------------------------------------------

_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})(?:[ T](.+))?$")
_TIMES = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p", "%H:%M:%S.%f")
_WORDY = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%Y/%m/%d")


def parse_deal_datetime(raw: str, day_first: bool = True) -> dt.datetime:
    """A date or date-time in the formats CRMs export; naive values are read as UTC.

    ``03/04/2026`` is the 3rd of April when ``day_first`` (the file's other dates decide it).
    """
    text_ = raw.strip()
    value: dt.datetime | None = None
    with contextlib.suppress(ValueError):
        value = dt.datetime.fromisoformat(text_.replace("Z", "+00:00"))
    if value is None and (match := _NUMERIC_DATE.match(text_)):
        a, b, year = int(match[1]), int(match[2]), int(match[3])
        if year < 100:
            year += 2000
        day, month = (a, b) if day_first else (b, a)
        try:
            value = dt.datetime(year, month, day)
        except ValueError:
            value = None
        if value is not None and match[4]:
            value = _with_time(value, match[4])
    if value is None:
        for fmt in _WORDY:
            for candidate in (text_, " ".join(text_.split()[:3])):
                try:
                    parsed = dt.datetime.strptime(candidate, fmt)
                except ValueError:
                    continue
                rest = text_[len(candidate) :].strip()
                value = _with_time(parsed, rest) if rest else parsed
                break
            if value is not None:
                break
    if value is None:
        raise RowValueError(
            _("%r is not a date (use YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY or 31 May 2026)") % raw
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _with_time(day: dt.datetime, raw: str) -> dt.datetime | None:
    for fmt in _TIMES:
        try:
            clock = dt.datetime.strptime(raw.strip(), fmt).time()
        except ValueError:
            continue
        return dt.datetime.combine(day.date(), clock)
    return None


def date_order_evidence(values: Iterable[str]) -> tuple[int, int]:
    """How many values can only be day-first, and how many only month-first."""
    day_first = month_first = 0
    for raw in values:
        if match := _NUMERIC_DATE.match(raw.strip()):
            a, b = int(match[1]), int(match[2])
            if a > 12 >= b:
                day_first += 1
            elif b > 12 >= a:
                month_first += 1
    return day_first, month_first


# -- stage names --------------------------------------------------------------------------------

_WON_NAMES = {"won", "closedwon", "ganado", "ganada", "cerradoganado", "cerradaganada", "win"}
_LOST_NAMES = {"lost", "closedlost", "perdido", "perdida", "cerradoperdido", "cerradaperdida"}
_OPEN_STATUS = {"open", "abierto", "abierta", "active", "inprogress"}
_CATEGORIES = {
    "pipeline": ForecastCategory.PIPELINE,
    "bestcase": ForecastCategory.BEST_CASE,
    "upside": ForecastCategory.BEST_CASE,
    "commit": ForecastCategory.COMMIT,
    "mostlikely": ForecastCategory.COMMIT,
    "closed": "",
    "closedwon": "",
    "omitted": "",
}


class StageDirectory:
    """Pipelines and stages by normalised name, loaded once per import."""

    def __init__(self) -> None:
        self.pipelines = {normalize_header(p.name): p for p in Pipeline.objects.all()}
        self.default = actions.default_pipeline()
        self.pipelines.setdefault(normalize_header(self.default.name), self.default)
        self.stages: dict[int, dict[str, Stage]] = {}
        self.closing: dict[tuple[int, str], Stage] = {}
        for stage in Stage.objects.order_by("pipeline_id", "position", "id"):
            self.stages.setdefault(stage.pipeline_id, {})[normalize_header(stage.name)] = stage
            self.closing.setdefault((stage.pipeline_id, stage.kind), stage)

    def pipeline(self, raw: str | None) -> Pipeline:
        if not raw:
            return self.default
        found = self.pipelines.get(normalize_header(raw))
        if found is None:
            names = ", ".join(p.name for p in self.pipelines.values())
            raise RowValueError(
                _("no pipeline named %(raw)r; the pipelines are: %(names)s")
                % {
                    "raw": raw,
                    "names": names,
                }
            )
        return found

    def stage(self, pipeline: Pipeline, raw: str) -> Stage:
        key = normalize_header(raw)
        stages = self.stages.get(pipeline.pk, {})
        if key in stages:
            return stages[key]
        if key in _WON_NAMES and (pipeline.pk, StageKind.WON) in self.closing:
            return self.closing[(pipeline.pk, StageKind.WON)]
        if key in _LOST_NAMES and (pipeline.pk, StageKind.LOST) in self.closing:
            return self.closing[(pipeline.pk, StageKind.LOST)]
        known = ", ".join(s.name for s in stages.values())
        raise RowValueError(
            _("%(raw)r is not a stage of pipeline %(pipeline)s; its stages are: %(known)s")
            % {"raw": raw, "pipeline": pipeline.name, "known": known}
        )


def parse_status(raw: str) -> str:
    key = normalize_header(raw)
    if key in _WON_NAMES:
        return DealStatus.WON
    if key in _LOST_NAMES:
        return DealStatus.LOST
    if key in _OPEN_STATUS:
        return DealStatus.OPEN
    raise RowValueError(_("%r is not a deal status; use open, won or lost") % raw)


def parse_category(raw: str) -> str:
    key = normalize_header(raw)
    if key not in _CATEGORIES:
        raise RowValueError(
            _("%r is not a forecast category; use pipeline, best case or commit") % raw
        )
    return _CATEGORIES[key]


def _emails(raw: str) -> list[str]:
    emails = [e.strip().lower() for e in re.split(r"[;,\s]+", raw) if e.strip()]
    bad = [e for e in emails if "@" not in e]
    if bad:
        raise RowValueError(
            _("%r is not a list of contact emails (separate them with ; or ,)") % raw
        )
    return emails


# -- the importer -------------------------------------------------------------------------------

_DATE_FIELDS = ("expected_close_date", "created_at", "closed_at", "won_at", "lost_at", "engaged_at")
# Columns other CRMs export that Embudo works out itself (from the stage), noted and skipped.
_DERIVED = ("probability", "deal probability", "weighted amount", "expected revenue", "age")


class DealImport(TableImport):
    """Deals, updated by external id or created; their contacts (by email) become opportunities,
    and customers when the deal is won; companies are linked by domain or name, or created."""

    noun = "deals"

    def __init__(
        self,
        source: CsvSource,
        options: ImportOptions,
        result: ImportResult,
        report: ErrorReport,
    ) -> None:
        self.day_first: dict[str, bool] = {}
        self.directory = StageDirectory()
        self.reporting = actions.reporting_currency()
        self.rates: dict[str, Decimal | str] = {}
        # Columns that are no deal field are left out with a note, not refused: exports from
        # other CRMs carry dozens of them.
        aliases = {
            normalize_header(alias)
            for spec in self.field_specs().values()
            for alias in (spec.name, *spec.aliases)
        }
        mapped = {normalize_header(name) for name in options.mapping}
        if options.id_column:
            mapped.add(normalize_header(options.id_column))
        derived = {normalize_header(name) for name in _DERIVED}
        self.left_out: list[str] = []
        mapping = dict(options.mapping)
        for header in source.header:
            key = normalize_header(header)
            if header and key not in aliases and key not in mapped:
                mapping[header] = "-"
                self.left_out.append(header)
        local = ImportOptions(**{**options.__dict__, "mapping": mapping})
        super().__init__(source, local, result, report)
        skipped = {_("column %r skipped (--map)") % name for name in self.left_out}
        result.notes[:] = [n for n in result.notes if n not in skipped]
        for name in self.left_out:
            if normalize_header(name) in derived:
                result.notes.append(
                    _("column %r is worked out by Embudo from the stage; not imported") % name
                )
            else:
                result.notes.append(_("column %r is not a deal field; not imported") % name)

    def field_specs(self) -> dict[str, FieldSpec]:
        def date_parser(field: str) -> Callable[[str], Any]:
            def parse(raw: str) -> dt.datetime:
                return parse_deal_datetime(raw, self.day_first.get(field, True))

            return parse

        return {
            spec.name: spec
            for spec in (
                FieldSpec(
                    "name",
                    text(255),
                    (
                        "deal name",
                        "deal",
                        "deal title",
                        "title",
                        "opportunity name",
                        "opportunity",
                        "nombre",
                        "nombre del negocio",
                    ),
                ),
                FieldSpec(
                    "external_id",
                    text(128),
                    ("deal id", "record id", "opportunity id", "externalid", "id"),
                ),
                FieldSpec(
                    "amount",
                    parse_money,
                    (
                        "value",
                        "deal value",
                        "deal amount",
                        "opportunity amount",
                        "importe",
                        "valor",
                        "monto",
                    ),
                ),
                FieldSpec(
                    "currency",
                    parse_currency,
                    ("deal currency", "currency code", "opportunity currency", "moneda"),
                ),
                FieldSpec("pipeline", text(128), ("deal pipeline", "pipeline name", "embudo")),
                FieldSpec(
                    "stage",
                    text(128),
                    ("deal stage", "stage name", "opportunity stage", "etapa", "fase"),
                ),
                FieldSpec("status", parse_status, ("deal status", "estado", "won lost")),
                FieldSpec(
                    "expected_close_date",
                    date_parser("expected_close_date"),
                    (
                        "close date",
                        "expected close",
                        "closing date",
                        "expected close date",
                        "fecha de cierre",
                        "fecha prevista de cierre",
                    ),
                ),
                FieldSpec(
                    "created_at",
                    date_parser("created_at"),
                    (
                        "create date",
                        "created",
                        "created date",
                        "deal created",
                        "date created",
                        "add time",
                        "fecha de creacion",
                    ),
                ),
                FieldSpec(
                    "closed_at",
                    date_parser("closed_at"),
                    ("closed date", "close time", "actual close date", "date closed", "closed on"),
                ),
                FieldSpec("won_at", date_parser("won_at"), ("won time", "won date", "won on")),
                FieldSpec("lost_at", date_parser("lost_at"), ("lost time", "lost date", "lost on")),
                FieldSpec(
                    "engaged_at",
                    date_parser("engaged_at"),
                    ("engagement date", "first engagement", "engaged"),
                ),
                FieldSpec(
                    "owner",
                    owner_parser(),
                    (
                        "deal owner",
                        "opportunity owner",
                        "owner email",
                        "owner username",
                        "sales rep",
                        "propietario",
                    ),
                ),
                FieldSpec(
                    "company",
                    text(255),
                    (
                        "company name",
                        "associated company",
                        "account name",
                        "account",
                        "organization",
                        "organisation",
                        "empresa",
                    ),
                ),
                FieldSpec(
                    "company_domain",
                    parse_domain,
                    ("company domain name", "company website", "website", "domain"),
                ),
                FieldSpec(
                    "contacts",
                    _emails,
                    (
                        "contact emails",
                        "contact email",
                        "associated contacts",
                        "associated contact",
                        "contact",
                        "person email",
                        "contactos",
                    ),
                ),
                FieldSpec(
                    "product_line", text(128), ("product", "line", "producto", "linea de producto")
                ),
                FieldSpec(
                    "lost_reason",
                    text(128),
                    (
                        "closed lost reason",
                        "loss reason",
                        "reason lost",
                        "motivo de perdida",
                        "razon de perdida",
                    ),
                ),
                FieldSpec("lost_note", text(255), ("lost reason note", "lost comment")),
                FieldSpec("forecast_category", parse_category, ("forecast",)),
            )
        }

    key_labels: ClassVar[dict[str, Any]] = {"external_id": gettext_lazy("external id")}

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        if external_id := row.fields.get("external_id"):
            yield "external_id", external_id

    def _header(self, target: str) -> str:
        return next(
            (c.header for c in self.columns if c.target == target and c.kind == FIELD), target
        )

    def run(self) -> None:
        self._settle_date_order()
        self.companies = CompanyIndex()
        self.reasons = {r.name.lower(): r for r in LostReason.objects.all()}
        self.products = {p.name.lower(): p for p in ProductLine.objects.all()}
        self.result.counts.update(companies_created=0, lost_reasons_created=0)
        self.unrecorded_reasons = 0
        super().run()
        if self.unrecorded_reasons:
            self.result.notes.append(
                _("%s lost deals had no lost reason; they were given 'Not recorded'")
                % self.unrecorded_reasons
            )

    def _settle_date_order(self) -> None:
        """Read each date column once to tell 31/05 (day first) from 05/31 (month first)."""
        columns = [c for c in self.columns if c.kind == FIELD and c.target in _DATE_FIELDS]
        if not columns:
            return
        samples: dict[int, list[str]] = {c.index: [] for c in columns}
        for record in self.source.records():
            for column in columns:
                if column.index < len(record.values):
                    samples[column.index].append(record.values[column.index])
        for column in columns:
            day_first, month_first = date_order_evidence(samples[column.index])
            self.day_first[column.target] = day_first >= month_first
            if month_first and not day_first:
                self.result.notes.append(
                    _("column %r holds month-first dates (MM/DD/YYYY)") % column.header
                )

    # Row-level checks: what needs several cells, or the database, to judge.
    def parse(self, record: Record) -> Any:
        # The engine's parse gives (row, ok); row-level problems here turn ok off.
        parsed: Any = super().parse(record)
        row, ok = parsed if isinstance(parsed, tuple) else (parsed, parsed is not None)
        if row is None or not ok:
            return parsed
        problems: list[tuple[str, str]] = []
        f = row.fields
        if not f.get("name"):
            problems.append(("name", _("a deal needs a name")))
        if "amount" not in f:
            problems.append(("amount", _("a deal needs an amount")))
        else:
            amount, written_currency = f["amount"]
            f["amount"] = amount
            currency = f.get("currency") or written_currency or self.reporting
            if written_currency and f.get("currency") and written_currency != f["currency"]:
                problems.append(
                    (
                        "currency",
                        _("the amount is written in %(a)s but the currency column says %(b)s")
                        % {"a": written_currency, "b": f["currency"]},
                    )
                )
            f["currency"] = currency
            if (message := self._rate_problem(currency)) is not None:
                problems.append(
                    ("currency" if "currency" in self._targets() else "amount", message)
                )
        try:
            pipeline = self.directory.pipeline(f.get("pipeline"))
        except RowValueError as error:
            problems.append(("pipeline", str(error)))
            pipeline = None
        if pipeline is not None:
            self._resolve_stage(row, pipeline, problems)
        if f.get("contacts"):
            emails = f["contacts"]
            found = dict(Contact.objects.filter(email__in=emails).values_list("email", "pk"))
            missing = [e for e in emails if e not in found]
            if missing:
                problems.append(
                    (
                        "contacts",
                        _("no contact has the email %s; import the contacts first")
                        % ", ".join(missing),
                    )
                )
            f["contact_ids"] = sorted(set(found.values()))
        for field, problem in problems:
            self.report.add(record.line, self._header(field), problem)
        if isinstance(parsed, tuple):
            return row, not problems
        return None if problems else row

    def _targets(self) -> set[str]:
        return {c.target for c in self.columns if c.kind == FIELD}

    def _rate_problem(self, currency: str) -> str | None:
        if currency not in self.rates:
            try:
                self.rates[currency] = actions.rate_for(currency)
            except ValidationFailed as failed:
                self.rates[currency] = " ".join(failed.errors["currency"])
        rate = self.rates[currency]
        return rate if isinstance(rate, str) else None

    def _resolve_stage(
        self, row: ParsedRow, pipeline: Pipeline, problems: list[tuple[str, str]]
    ) -> None:
        f = row.fields
        status = f.get("status")
        stage: Stage | None = None
        if f.get("stage"):
            try:
                stage = self.directory.stage(pipeline, f["stage"])
            except RowValueError as error:
                problems.append(("stage", str(error)))
                return
        if status in (DealStatus.WON, DealStatus.LOST) and (
            stage is None or stage.kind == StageKind.OPEN
        ):
            # Pipedrive keeps the last open stage and says "won" in a status column.
            stage = self.directory.closing.get((pipeline.pk, status))
        elif status in (DealStatus.WON, DealStatus.LOST) and stage and stage.kind != status:
            problems.append(
                (
                    "status",
                    _("the status says %(s)s but stage %(n)r is not a %(s)s stage")
                    % {"s": status, "n": stage.name},
                )
            )
            return
        elif status == DealStatus.OPEN and stage is not None and stage.kind != StageKind.OPEN:
            problems.append(
                ("status", _("the status says open but stage %r is closed") % stage.name)
            )
            return
        if stage is None:
            stage = next(
                (
                    s
                    for s in self.directory.stages.get(pipeline.pk, {}).values()
                    if s.kind == "open"
                ),
                None,
            )
        if stage is None:
            problems.append(("stage", _("pipeline %s has no open stage") % pipeline.name))
            return
        f["pipeline_id"], f["stage"] = pipeline.pk, stage
        closing_times: dict[str, Any] = {
            StageKind.WON: f.get("closed_at") or f.get("won_at"),
            StageKind.LOST: f.get("closed_at") or f.get("lost_at"),
        }
        closed = closing_times.get(stage.kind)
        if stage.kind == StageKind.OPEN:
            if not f.get("expected_close_date"):
                problems.append(("expected_close_date", _("an open deal needs a close date")))
            f["closed_at"] = None
        else:
            closed = closed or (
                dt.datetime.combine(f["expected_close_date"].date(), dt.time(), tzinfo=dt.UTC)
                if f.get("expected_close_date")
                else None
            )
            if closed is None:
                problems.append(("expected_close_date", _("a closed deal needs its close date")))
            f["closed_at"] = closed
            f.setdefault("expected_close_date", closed)
            if closed and f.get("created_at") and closed < f["created_at"]:
                problems.append(("closed_at", _("the deal closes before it was created")))
        if f.get("lost_reason") and stage.kind != StageKind.LOST:
            problems.append(("lost_reason", _("only a lost deal has a lost reason")))

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        self.companies.load(
            domains=[r.fields["company_domain"] for r in rows if "company_domain" in r.fields],
            names=[r.fields["company"] for r in rows if "company" in r.fields],
        )
        external_ids = [r.fields["external_id"] for r in rows if "external_id" in r.fields]
        existing = {
            d.external_id: d
            for d in Deal.objects.filter(external_id__in=external_ids).select_related("stage")
        }
        for row in rows:
            try:
                # A savepoint per row: under --skip-invalid a row refused half-way leaves no trace.
                with transaction.atomic():
                    data = self._deal_data(row)
                    deal = existing.get(row.fields.get("external_id") or "")
                    if deal is None:
                        actions.create_deal(
                            data, actor=self.options.actor, cause=TransitionCause.IMPORT
                        )
                        self.result.created += 1
                    else:
                        self._update(deal, data, row)
            except ValidationFailed as failed:
                for name, messages in failed.errors.items():
                    column = self._header(name.removesuffix("_id"))
                    for message in messages:
                        self.report.add(row.line, column, message)

    def _update(self, deal: Deal, data: dict[str, Any], row: ParsedRow) -> None:
        stage: Stage = row.fields["stage"]
        editable = {k: v for k, v in data.items() if k in actions.EDITABLE_FIELDS}
        if deal.status != DealStatus.OPEN or stage.kind != StageKind.OPEN:
            editable.pop("forecast_category", None)
        before = _snapshot(deal)
        if stage.kind == StageKind.OPEN or deal.stage_id == stage.pk:
            actions.update_deal(deal, editable, actor=self.options.actor, cause="import")
        if deal.stage_id != stage.pk:
            reason = (
                LostReason.objects.get(pk=data["lost_reason_id"])
                if data.get("lost_reason_id")
                else None
            )
            actions.move_deal_stage(
                deal,
                stage,
                actor=self.options.actor,
                cause=TransitionCause.IMPORT,
                at=data.get("closed_at"),
                lost_reason=reason,
                lost_note=data.get("lost_note", ""),
            )
            if stage.kind != StageKind.OPEN:
                actions.update_deal(deal, editable, actor=self.options.actor, cause="import")
        after = _snapshot(deal)
        if before == after:
            self.result.unchanged += 1
        else:
            self.result.updated += 1

    def _deal_data(self, row: ParsedRow) -> dict[str, Any]:
        f = row.fields
        stage: Stage = f["stage"]
        data: dict[str, Any] = {
            "name": f["name"],
            "amount": f["amount"],
            "currency": f["currency"],
            "pipeline_id": f["pipeline_id"],
            "stage_id": stage.pk,
            "expected_close_date": f["expected_close_date"].date(),
        }
        for name in ("external_id", "created_at", "engaged_at", "closed_at", "lost_note"):
            if f.get(name) is not None:
                data[name] = f[name]
        if "owner" in f:
            data["owner_id"] = f["owner"]
        if f.get("contact_ids"):
            data["contact_ids"] = f["contact_ids"]
        if f.get("forecast_category"):
            data["forecast_category"] = f["forecast_category"]
        if f.get("company") or f.get("company_domain"):
            data["company_id"] = self._company(row)
        if f.get("product_line"):
            data["product_line_id"] = self._product(f["product_line"])
        if stage.kind == StageKind.LOST:
            data["lost_reason_id"] = self._reason(f.get("lost_reason"))
        return data

    def _company(self, row: ParsedRow) -> int:
        domain, name = row.fields.get("company_domain"), row.fields.get("company")
        found = (self.companies.by_domain.get(domain) if domain else None) or (
            self.companies.by_name.get(name.lower()) if name else None
        )
        if found:
            return found[0].pk
        company = crm_actions.create_company(
            {"name": name or domain, "domain": domain or ""}, actor=self.options.actor
        )
        self.companies.add(company)
        self.result.counts["companies_created"] += 1
        return company.pk

    def _product(self, name: str) -> int:
        product = self.products.get(name.lower())
        if product is None:
            product = actions.create_product_line(name, actor=self.options.actor)
            self.products[name.lower()] = product
        return product.pk

    def _reason(self, name: str | None) -> int:
        if not name:
            self.unrecorded_reasons += 1
            name = "Not recorded"
        reason = self.reasons.get(name.lower())
        if reason is None:
            reason = actions.create_lost_reason(name, actor=self.options.actor)
            self.reasons[name.lower()] = reason
            self.result.counts["lost_reasons_created"] += 1
        return reason.pk


register_importer(
    Importer(
        "deals",
        run_table(DealImport),
        gettext_lazy("deals from another CRM, with their stage, amount, close date and contacts"),
    )
)


def _snapshot(deal: Deal) -> tuple[Any, ...]:
    """What an import row can change on a deal, to tell an updated deal from an unchanged one."""
    return (
        deal.name,
        deal.amount,
        deal.currency,
        deal.expected_close_date,
        deal.owner_id,
        deal.company_id,
        deal.product_line_id,
        deal.stage_id,
        set(deal.contacts.values_list("pk", flat=True)),
    )
