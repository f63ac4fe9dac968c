"""`embudo import costs FILE`: what each campaign or channel cost per period, through the shared
import engine (encodings, delimiters, header mapping, row errors with line and column, one
transaction, dry run).

A row names a campaign (as tracking knows it from utm_campaign) or a channel, a period, an
amount and its currency. A campaign Embudo has never seen is a row error with the closest
names, never a silently created campaign: a typo would otherwise carry spend that no touchpoint
can ever earn back.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo.analytics.costs import (
    CampaignDirectory,
    CostKey,
    CostValueError,
    parse_channel,
    parse_cost_period,
    set_cost,
)
from embudo.csvimport.cells import RowValueError, text
from embudo.csvimport.mapping import FIELD, FieldSpec
from embudo.csvimport.report import ImportFileError
from embudo.csvimport.run import Importer, register_importer
from embudo.csvimport.source import Record
from embudo.csvimport.table import ParsedRow, TableImport, run_table
from embudo.deals import actions as deal_actions
from embudo.deals.importing import parse_currency, parse_deal_datetime, parse_money
from embudo.errors import ValidationFailed


def _period(raw: str) -> Any:
    try:
        return parse_cost_period(raw)
    except CostValueError as error:
        raise RowValueError(str(error)) from None


def _channel(raw: str) -> str:
    try:
        return parse_channel(raw)
    except CostValueError as error:
        raise RowValueError(str(error)) from None


def _day(raw: str) -> Any:
    return parse_deal_datetime(raw).date()


class CostImport(TableImport):
    """Costs, one per campaign (or channel) and period; a figure already recorded for the same
    target and days is replaced, so importing a corrected file again does not count twice."""

    noun = "costs"

    def field_specs(self) -> dict[str, FieldSpec]:
        return {
            spec.name: spec
            for spec in (
                FieldSpec(
                    "campaign",
                    text(255),
                    ("campaign name", "utm campaign", "utm_campaign", "campana", "campaña"),
                ),
                FieldSpec("channel", _channel, ("canal", "marketing channel")),
                FieldSpec("period", _period, ("month", "periodo", "período", "mes")),
                FieldSpec("start", _day, ("start date", "from", "period start", "desde")),
                FieldSpec("end", _day, ("end date", "to", "period end", "hasta")),
                FieldSpec(
                    "amount",
                    parse_money,
                    ("cost", "spend", "spent", "importe", "coste", "costo", "gasto"),
                ),
                FieldSpec("currency", parse_currency, ("currency code", "moneda", "divisa")),
                FieldSpec("note", text(255), ("notes", "comment", "nota")),
            )
        }

    key_labels: ClassVar[dict[str, Any]] = {
        "campaign": gettext_lazy("campaign and period"),
        "channel": gettext_lazy("channel and period"),
    }

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        key = row.fields.get("key")
        if isinstance(key, CostKey):
            field = "campaign" if key.campaign_id else "channel"
            yield field, f"{row.fields['target_name']} {key.start}..{key.end}"

    def run(self) -> None:
        self.campaigns = CampaignDirectory()
        self.reporting = deal_actions.reporting_currency()
        self.rates: dict[str, str | None] = {}
        targets = {c.target for c in self.columns if c.kind == FIELD}
        missing = []
        if "amount" not in targets:
            missing.append(_("an amount column (amount, cost or spend)"))
        if not targets & {"campaign", "channel"}:
            missing.append(_("a campaign or channel column"))
        if "period" not in targets and not {"start", "end"} <= targets:
            missing.append(_("a period column, or start and end columns"))
        if missing:
            raise ImportFileError(_("the file needs %s") % _(" and ").join(missing))
        self.result.counts.update(campaigns=0, channels=0)
        super().run()

    def _header(self, target: str) -> str:
        return next(
            (c.header for c in self.columns if c.target == target and c.kind == FIELD), target
        )

    def parse(self, record: Record) -> Any:
        row, ok = super().parse(record)
        if not ok:
            return row, ok
        f = row.fields
        problems: list[tuple[str, str]] = []
        campaign_id: int | None = None
        channel = ""
        if f.get("campaign") and f.get("channel"):
            problems.append(("channel", _("give a campaign or a channel, not both")))
        elif f.get("campaign"):
            try:
                campaign_id = self.campaigns.find(f["campaign"])
            except CostValueError as error:
                problems.append(("campaign", str(error)))
        elif f.get("channel"):
            channel = f["channel"]
        else:
            problems.append(("campaign", _("a cost needs a campaign or a channel")))
        if f.get("period"):
            if f.get("start") or f.get("end"):
                problems.append(("period", _("give a period or start and end, not both")))
            start, end = f["period"]
        else:
            start, end = f.get("start"), f.get("end")
            if start is None or end is None:
                problems.append(("period", _("a cost needs a period (or a start and an end)")))
            elif end < start:
                problems.append(("end", _("the period ends before it starts")))
        if "amount" not in f:
            problems.append(("amount", _("a cost needs an amount")))
        else:
            amount, written = f["amount"]
            currency = f.get("currency") or written or self.reporting
            if written and f.get("currency") and written != f["currency"]:
                problems.append(
                    (
                        "currency",
                        _("the amount is written in %(a)s but the currency column says %(b)s")
                        % {"a": written, "b": f["currency"]},
                    )
                )
            elif (problem := self._rate_problem(currency)) is not None:
                problems.append(("currency" if "currency" in f else "amount", problem))
            f["amount"], f["currency"] = Decimal(amount), currency
        if not problems and start is not None and end is not None:
            f["key"] = CostKey(campaign_id, channel, start, end)
            f["target_name"] = f.get("campaign") or channel
        for field, problem in problems:
            self.report.add(record.line, self._header(field), problem)
        return row, not problems

    def _rate_problem(self, currency: str) -> str | None:
        if currency not in self.rates:
            try:
                deal_actions.rate_for(currency)
                self.rates[currency] = None
            except ValidationFailed as failed:
                self.rates[currency] = " ".join(failed.errors["currency"])
        return self.rates[currency]

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        for row in rows:
            f = row.fields
            try:
                with transaction.atomic():
                    _cost, outcome = set_cost(
                        f["key"],
                        f["amount"],
                        f["currency"],
                        note=f.get("note", ""),
                        actor=self.options.actor,
                        audit=False,
                    )
            except ValidationFailed as failed:
                for name, messages in failed.errors.items():
                    for message in messages:
                        self.report.add(row.line, self._header(name), message)
                continue
            if outcome == "created":
                self.result.created += 1
            elif outcome == "updated":
                self.result.updated += 1
            else:
                self.result.unchanged += 1
            self.result.counts["campaigns" if f["key"].campaign_id else "channels"] += 1


register_importer(
    Importer(
        "costs",
        run_table(CostImport),
        gettext_lazy(
            "marketing spend: campaign or channel, period (2026-03, 2026-Q1…), amount, currency"
        ),
    )
)
