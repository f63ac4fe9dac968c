"""`embudo plan`: the reverse-funnel plan for a revenue target, as a table or JSON."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from embudo.commands import DataCommand
from embudo.deals.models import SalesTeam
from embudo.deals.periods import PeriodError, current, parse_period
from embudo.deals.planner import (
    DEFAULT_MIN_DEALS,
    DEFAULT_MIN_SAMPLE,
    DEFAULT_WINDOW_DAYS,
    PlanError,
    PlanRequest,
    PlanResult,
    make_plan,
    parse_rate,
)
from embudo.reports import Table
from embudo.reports.render import as_text


class Command(DataCommand):
    help = (
        "Work back from a revenue target to the deals, opportunities, SQLs, MQLs, leads (and "
        "visitors) a period needs, with measured or given conversion rates, and the pace so far."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--revenue", help="revenue target in the reporting currency (default: the goal)"
        )
        parser.add_argument(
            "--deal-value", help="average won deal (default: measured over the trailing window)"
        )
        parser.add_argument(
            "--period", help="YYYY-MM, YYYY-Qn or YYYY (default: the current month)"
        )
        parser.add_argument(
            "--rate",
            action="append",
            default=[],
            metavar="STAGE=R",
            help="a given rate: mql=0.4 (mql→sql) or lead:customer=0.05 (end to end); repeatable",
        )
        parser.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS)
        parser.add_argument("--min-sample", type=int, default=DEFAULT_MIN_SAMPLE)
        parser.add_argument("--min-deals", type=int, default=DEFAULT_MIN_DEALS)
        parser.add_argument("--team", help="the goal and deals of this sales team (name)")
        parser.add_argument("--owner", help="the goal and deals of this rep (username)")
        parser.add_argument("--format", choices=("table", "json"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            period = parse_period(options["period"]) if options["period"] else current("month")
            rates = tuple(parse_rate(text) for text in options["rate"])
            request = PlanRequest(
                period=period,
                revenue=_money(options["revenue"], "--revenue"),
                deal_value=_money(options["deal_value"], "--deal-value"),
                rates=rates,
                window_days=options["window_days"],
                min_sample=options["min_sample"],
                min_deals=options["min_deals"],
                team_id=_team(options["team"]),
                owner_id=_owner(options["owner"]),
            )
            plan = make_plan(request)
        except (PlanError, PeriodError) as error:
            raise CommandError(str(error)) from None
        if options["format"] == "json":
            self.stdout.write(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(render_plan(plan), ending="")


def _money(raw: str | None, flag: str) -> Decimal | None:
    if raw is None:
        return None
    text = raw.strip().replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"{flag} {raw!r} is not a number") from None
    if not value.is_finite():
        raise CommandError(f"{flag} {raw!r} is not a number")
    return value


def _team(name: str | None) -> int | None:
    if not name:
        return None
    team = SalesTeam.objects.filter(name__iexact=name.strip()).first()
    if team is None:
        known = ", ".join(SalesTeam.objects.values_list("name", flat=True)) or "none"
        raise CommandError(f"no sales team named {name!r}; the teams are: {known}")
    return team.pk


def _owner(username: str | None) -> int | None:
    if not username:
        return None
    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user.pk


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def render_plan(plan: PlanResult) -> str:
    period = plan.request.period
    lines = [
        f"Plan for {period.label} ({period.kind}, {period.start} to {period.end}), "
        f"{plan.elapsed:.0%} elapsed",
        f"Revenue target: {_amount(plan.revenue)} {plan.currency} ({plan.revenue_source})",
        f"Average deal:   {_amount(plan.deal_value)} {plan.currency} ({plan.deal_value_source}"
        + (f", n={plan.deal_value_sample}" if plan.deal_value_sample else "")
        + ")",
        f"Deals to win:   {plan.deals_needed}",
        "",
    ]
    rows = []
    for step in plan.steps:
        rate = f"{step.rate:.2%} to {step.rate_to}" if step.rate is not None else ""
        rows.append(
            [
                step.stage,
                step.needed if step.needed is not None else "—",
                rate,
                step.source,
                step.sample if step.sample is not None else "",
                step.actual if step.actual is not None else "",
                step.expected_by_now if step.expected_by_now is not None else "",
                step.gap if step.gap else "",
                step.status,
            ]
        )
    lines.append(
        as_text(
            Table(
                ["Stage", "Needed", "Rate", "Source", "Sample", "Actual", "Pace", "Gap", "Status"],
                rows,
            )
        ).rstrip("\n")
    )
    lines.append("")
    lines.append(
        f"Revenue so far: {_amount(plan.revenue_actual)} {plan.currency} of "
        f"{_amount(plan.revenue_expected_by_now)} expected by now ({plan.revenue_status})"
    )
    if plan.mqls_needed is not None:
        per_month = f" ({plan.mqls_per_month} per month)" if period.kind != "month" else ""
        lines.append(f"Marketing commitment: {plan.mqls_needed} MQLs in {period.label}{per_month}")
    for step in plan.steps:
        if step.note:
            lines.append(f"Note ({step.stage}): {step.note}")
    for note in plan.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"
