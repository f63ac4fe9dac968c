"""The forecast and the sales metrics as typed query objects: a request in, a result out.

The API, the CLI (`embudo report forecast|sales`), the CSV/JSON downloads and the pages all call
:func:`forecast` and :func:`sales_metrics`. Amounts are in the reporting currency (each deal's
``amount_reporting``); every figure is computed in the database with conditional aggregates.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from embudo.db.functions import DaysBetween
from embudo.deals.actions import reporting_currency
from embudo.deals.models import Deal, DealStatus, ForecastCategory, ProductLine, SalesTeam
from embudo.deals.periods import add_months, current
from embudo.reports import ReportOption, ReportParams, ReportSpec, Table

CENT = Decimal("0.01")
MONEY = DecimalField(max_digits=20, decimal_places=4)

FORECAST_BREAKDOWNS = ("period", "owner", "team")
SALES_BREAKDOWNS = ("none", "period", "owner", "team", "product", "region")
INTERVALS = ("month", "quarter")
CYCLE_STARTS = ("created", "engaged")

WIN_RATE_CLOSED_LABEL = "Win rate (won ÷ closed: won and lost)"
WIN_RATE_ALL_LABEL = "Win rate (won ÷ all deals, open ones included)"


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _default_range() -> tuple[dt.date, dt.date]:
    quarter = current("quarter")
    return quarter.start, quarter.end - dt.timedelta(days=1)


# -- grouping helpers ---------------------------------------------------------------------------


def _labels(by: str, keys: set[Any]) -> dict[Any, str]:
    """Readable names for breakdown keys, fetched in one query per breakdown."""
    real = {k for k in keys if k is not None}
    if by == "owner":
        users = get_user_model().objects.filter(pk__in=real)
        names = {u.pk: (u.get_full_name() or u.get_username()) for u in users}
        return {k: names.get(k, f"user {k}") if k is not None else "Unassigned" for k in keys}
    if by == "team":
        names = dict(SalesTeam.objects.filter(pk__in=real).values_list("pk", "name"))
        return {k: names.get(k, str(k)) if k is not None else "No team" for k in keys}
    if by == "product":
        names = dict(ProductLine.objects.filter(pk__in=real).values_list("pk", "name"))
        return {k: names.get(k, str(k)) if k is not None else "No product line" for k in keys}
    if by == "region":
        return {k: k or "No country" for k in keys}
    if by == "period":
        return {k: _period_label(k) for k in keys}
    return {k: "All" for k in keys}


def _period_label(value: Any, interval: str = "month") -> str:
    if value is None:
        return "—"
    day = value.date() if isinstance(value, dt.datetime) else value
    if interval == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day:%Y-%m}"


def _team_key() -> str:
    return "owner__sales_team_membership__team_id"


def _period_starts(date_from: dt.date, date_to: dt.date, interval: str) -> list[dt.date]:
    """The first day of each month (or quarter) from the one holding ``date_from`` to the one
    holding ``date_to``, and the first day after the last."""
    step = 3 if interval == "quarter" else 1
    first = dt.date(date_from.year, date_from.month, 1)
    if step == 3:
        first = dt.date(first.year, (first.month - 1) // 3 * 3 + 1, 1)
    starts = [first]
    while starts[-1] <= date_to:
        starts.append(add_months(starts[-1], step))
    return starts


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _bucket(conditions: list[Q]) -> Any:
    """The index of the first condition a row meets (conditions "before the start of period
    k+1", in order, so each implies the next): the period the row falls in.

    Boundaries are worked out here in the site's time zone and compared in the database, so
    month edges are right without a date function per row; the comparisons nest as a binary
    search, a handful per row however many periods there are.
    """

    def search(low: int, high: int) -> Any:
        # The answer lies in [low, high]; high == len(conditions) means "after every boundary".
        if low == high:
            return Value(low)
        middle = (low + high) // 2
        return Case(
            When(conditions[middle], then=search(low, middle)),
            default=search(middle + 1, high),
            output_field=IntegerField(),
        )

    return search(0, len(conditions))


# -- forecast -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastRequest:
    """Deals expected to close (open) or closed won between two dates, grouped."""

    date_from: dt.date
    date_to: dt.date  # inclusive
    by: str = "period"  # period, owner or team
    interval: str = "month"  # for by=period: month or quarter
    pipeline_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None


@dataclass(frozen=True)
class ForecastRow:
    key: str
    label: str
    open_deals: int
    won_deals: int
    pipeline: Decimal  # open amount in the pipeline category
    best_case: Decimal  # open amount in best case
    commit: Decimal  # open amount in commit
    closed_won: Decimal  # won amount
    weighted: Decimal  # sum of open amount * stage probability

    @property
    def open_amount(self) -> Decimal:
        return self.pipeline + self.best_case + self.commit

    @property
    def commit_forecast(self) -> Decimal:
        """What the team stands behind: closed won plus commit."""
        return self.closed_won + self.commit

    @property
    def best_case_forecast(self) -> Decimal:
        return self.closed_won + self.commit + self.best_case

    @property
    def expected(self) -> Decimal:
        """Closed won plus the probability-weighted open pipeline."""
        return self.closed_won + self.weighted

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label}
        out["open_deals"] = self.open_deals
        out["won_deals"] = self.won_deals
        for name in (
            "pipeline",
            "best_case",
            "commit",
            "closed_won",
            "weighted",
            "open_amount",
            "commit_forecast",
            "best_case_forecast",
            "expected",
        ):
            out[name] = float(getattr(self, name))
        return out


FORECAST_COLUMNS = (
    ("label", "Group"),
    ("open_deals", "Open deals"),
    ("pipeline", "Pipeline"),
    ("best_case", "Best case"),
    ("commit", "Commit"),
    ("closed_won", "Closed won"),
    ("weighted", "Weighted pipeline"),
    ("commit_forecast", "Commit forecast"),
    ("best_case_forecast", "Best-case forecast"),
    ("expected", "Expected (won + weighted)"),
)


@dataclass(frozen=True)
class ForecastResult:
    request: ForecastRequest
    currency: str
    rows: list[ForecastRow]
    total: ForecastRow

    def to_dict(self) -> dict[str, Any]:
        request = asdict(self.request)
        return {
            "report": "forecast",
            "currency": self.currency,
            "request": {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in request.items()
            },
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "notes": [
                "open deals count by expected close date, won deals by close date",
                "weighted pipeline = sum of amount * stage win probability over open deals",
                "commit forecast = closed won + commit; best-case forecast adds best case",
            ],
        }

    def table(self) -> Table:
        header = [
            f"{label} ({self.currency})" if name not in ("label", "open_deals") else label
            for name, label in FORECAST_COLUMNS
        ]
        header[0] = {"period": "Period", "owner": "Owner", "team": "Team"}[self.request.by]
        rows = [
            [getattr(row, name) for name, _ in FORECAST_COLUMNS] for row in [*self.rows, self.total]
        ]
        return Table(header, rows)


def forecast(request: ForecastRequest) -> ForecastResult:
    """The weighted pipeline and the forecast categories, by period, owner or team."""
    if request.by not in FORECAST_BREAKDOWNS:
        raise ValueError(f"by={request.by!r} is not one of {', '.join(FORECAST_BREAKDOWNS)}")
    start = timezone.make_aware(dt.datetime.combine(request.date_from, dt.time()))
    end = timezone.make_aware(dt.datetime.combine(request.date_to + dt.timedelta(1), dt.time()))
    deals: QuerySet[Deal] = Deal.objects.filter(
        Q(
            status=DealStatus.OPEN,
            expected_close_date__gte=request.date_from,
            expected_close_date__lte=request.date_to,
        )
        | Q(status=DealStatus.WON, closed_at__gte=start, closed_at__lt=end)
    )
    if request.pipeline_id is not None:
        deals = deals.filter(pipeline_id=request.pipeline_id)
    if request.owner_id is not None:
        deals = deals.filter(owner_id=request.owner_id)
    if request.team_id is not None:
        deals = deals.filter(**{_team_key(): request.team_id})
    is_open = Q(status=DealStatus.OPEN)

    def open_sum(category: str) -> Sum:
        return Sum("amount_reporting", filter=is_open & Q(forecast_category=category))

    aggregates = {
        "open_deals": Count("id", filter=is_open),
        "won_deals": Count("id", filter=Q(status=DealStatus.WON)),
        "pipeline": open_sum(ForecastCategory.PIPELINE),
        "best_case": open_sum(ForecastCategory.BEST_CASE),
        "commit": open_sum(ForecastCategory.COMMIT),
        "closed_won": Sum("amount_reporting", filter=Q(status=DealStatus.WON)),
        "weighted": Sum(
            ExpressionWrapper(F("amount_reporting") * F("stage__probability"), output_field=MONEY),
            filter=is_open,
        ),
    }
    if request.by == "period":
        # Open deals fall in the period they are expected to close, won deals in the one they
        # closed in.
        starts = _period_starts(request.date_from, request.date_to, request.interval)
        group = _bucket(
            [
                Q(status=DealStatus.OPEN, expected_close_date__lt=start_)
                | Q(status=DealStatus.WON, closed_at__lt=_midnight(start_))
                for start_ in starts[1:]
            ]
        )
        by_period: dict[int, dict[str, Any]] = {
            row["group"]: dict(row)
            for row in deals.annotate(group=group).values("group").annotate(**aggregates).order_by()
        }
        rows = [
            _forecast_row(str(starts[k]), _period_label(starts[k], request.interval), by_period[k])
            for k in sorted(by_period)
            if k < len(starts) - 1
        ]
    else:
        key_field = "owner_id" if request.by == "owner" else _team_key()
        data = list(deals.values(key_field).annotate(**aggregates).order_by())
        labels = _labels(request.by, {row[key_field] for row in data})
        rows = sorted(
            (
                _forecast_row(
                    str(row[key_field]) if row[key_field] is not None else "",
                    labels[row[key_field]],
                    row,
                )
                for row in data
            ),
            key=lambda r: (-r.expected, r.label),
        )
    total = _forecast_row(
        "total",
        "Total",
        {
            name: sum((getattr(row, name) for row in rows), Decimal(0))
            if name not in ("open_deals", "won_deals")
            else sum(getattr(row, name) for row in rows)
            for name in aggregates
        },
    )
    return ForecastResult(request, reporting_currency(), rows, total)


def _forecast_row(key: str, label: str, data: dict[str, Any]) -> ForecastRow:
    return ForecastRow(
        key=key,
        label=label,
        open_deals=int(data.get("open_deals") or 0),
        won_deals=int(data.get("won_deals") or 0),
        pipeline=_money(data.get("pipeline")),
        best_case=_money(data.get("best_case")),
        commit=_money(data.get("commit")),
        closed_won=_money(data.get("closed_won")),
        weighted=_money(data.get("weighted")),
    )


# -- sales metrics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesRequest:
    """Deals created between two dates, followed to today: how many were won, how big, how fast."""

    date_from: dt.date
    date_to: dt.date  # inclusive
    by: str = "none"  # none, period, owner, team, product or region (the company's country)
    cycle_from: str = "created"  # created or engaged
    pipeline_id: int | None = None
    owner_id: int | None = None


@dataclass(frozen=True)
class SalesRow:
    key: str
    label: str
    deals: int
    won: int
    lost: int
    open: int
    won_amount: Decimal
    cycle_median_days: float | None
    cycle_mean_days: float | None

    @property
    def win_rate_closed(self) -> float | None:
        return _ratio(self.won, self.won + self.lost)

    @property
    def win_rate_all(self) -> float | None:
        return _ratio(self.won, self.deals)

    @property
    def average_won(self) -> Decimal | None:
        return _money(self.won_amount / self.won) if self.won else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "deals": self.deals,
            "won": self.won,
            "lost": self.lost,
            "open": self.open,
            "win_rate_closed": self.win_rate_closed,
            "win_rate_all": self.win_rate_all,
            "won_amount": float(self.won_amount),
            "average_won": float(self.average_won) if self.average_won is not None else None,
            "cycle_median_days": self.cycle_median_days,
            "cycle_mean_days": self.cycle_mean_days,
        }


@dataclass(frozen=True)
class SalesResult:
    request: SalesRequest
    currency: str
    rows: list[SalesRow]
    total: SalesRow
    labels: dict[str, str] = field(
        default_factory=lambda: {
            "win_rate_closed": WIN_RATE_CLOSED_LABEL,
            "win_rate_all": WIN_RATE_ALL_LABEL,
        }
    )

    def to_dict(self) -> dict[str, Any]:
        request = asdict(self.request)
        start = "creation" if self.request.cycle_from == "created" else "first sales engagement"
        return {
            "report": "sales",
            "currency": self.currency,
            "request": {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in request.items()
            },
            "labels": self.labels,
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "notes": [
                "the deals created in the period, followed to today",
                f"sales cycle: days from the deal's {start} to its win",
            ],
        }

    def table(self) -> Table:
        group = {
            "none": "Group",
            "period": "Created in",
            "owner": "Owner",
            "team": "Team",
            "product": "Product line",
            "region": "Country",
        }[self.request.by]
        header = [
            group,
            "Deals",
            "Won",
            "Lost",
            "Open",
            "Win rate (won/closed)",
            "Win rate (won/all)",
            f"Average won deal ({self.currency})",
            "Cycle median (days)",
            "Cycle mean (days)",
        ]
        rows = [
            [
                row.label,
                row.deals,
                row.won,
                row.lost,
                row.open,
                row.win_rate_closed,
                row.win_rate_all,
                row.average_won,
                row.cycle_median_days,
                row.cycle_mean_days,
            ]
            for row in [*self.rows, self.total]
        ]
        return Table(header, rows)


def _sales_key(request: SalesRequest) -> tuple[Any, dict[Any, tuple[str, str]] | None]:
    """The breakdown's group expression; for periods also each group's (key, label)."""
    if request.by == "period":
        starts = _period_starts(request.date_from, request.date_to, "month")
        names = {k: (str(day), _period_label(day)) for k, day in enumerate(starts[:-1])}
        return _bucket([Q(created_at__lt=_midnight(day)) for day in starts[1:]]), names
    return {
        "none": Value("all"),
        "owner": F("owner_id"),
        "team": F(_team_key()),
        "product": F("product_line_id"),
        "region": Coalesce(F("company__country"), Value("")),
    }[request.by], None


def sales_metrics(request: SalesRequest) -> SalesResult:
    """Win rate both ways, average won deal and sales cycle, for deals created in the period.

    Counts and sums are one grouped query; the cycle lengths of the won deals (a few thousand
    numbers, computed in the database) come back to be ranked for the medians.
    """
    if request.by not in SALES_BREAKDOWNS:
        raise ValueError(f"by={request.by!r} is not one of {', '.join(SALES_BREAKDOWNS)}")
    if request.cycle_from not in CYCLE_STARTS:
        raise ValueError(f"cycle_from={request.cycle_from!r} is not one of created, engaged")
    start = _midnight(request.date_from)
    end = _midnight(request.date_to + dt.timedelta(days=1))
    deals = Deal.objects.filter(created_at__gte=start, created_at__lt=end)
    if request.pipeline_id is not None:
        deals = deals.filter(pipeline_id=request.pipeline_id)
    if request.owner_id is not None:
        deals = deals.filter(owner_id=request.owner_id)
    key, periods = _sales_key(request)
    deals = deals.annotate(group=key)
    won = Q(status=DealStatus.WON)
    counts = {
        row["group"]: row
        for row in deals.values("group")
        .annotate(
            deals=Count("id"),
            won=Count("id", filter=won),
            lost=Count("id", filter=Q(status=DealStatus.LOST)),
            open=Count("id", filter=Q(status=DealStatus.OPEN)),
            won_amount=Sum("amount_reporting", filter=won),
        )
        .order_by()
    }
    cycle_start = "created_at" if request.cycle_from == "created" else "engaged_at"
    cycles: dict[Any, list[float]] = defaultdict(list)
    for group, days in (
        deals.filter(won)
        .annotate(days=DaysBetween(cycle_start, "closed_at"))
        .values_list("group", "days")
        .order_by()
    ):
        cycles[group].append(days)
    every_cycle = [d for values in cycles.values() for d in values]
    if periods is None:
        labels = _labels(request.by, set(counts))
        periods = {g: (str(g) if g is not None else "", labels[g]) for g in counts}
    rows = [
        SalesRow(
            key=periods[group][0],
            label=periods[group][1],
            deals=row["deals"],
            won=row["won"],
            lost=row["lost"],
            open=row["open"],
            won_amount=_money(row["won_amount"]),
            cycle_median_days=_days(_median(cycles.get(group))),
            cycle_mean_days=_days(_mean(cycles.get(group))),
        )
        for group, row in counts.items()
    ]
    if request.by == "period":
        rows.sort(key=lambda r: r.key)
    else:
        rows.sort(key=lambda r: (-r.won_amount, r.label))
    total = SalesRow(
        key="total",
        label="Total",
        deals=sum(r.deals for r in rows),
        won=sum(r.won for r in rows),
        lost=sum(r.lost for r in rows),
        open=sum(r.open for r in rows),
        won_amount=sum((r.won_amount for r in rows), Decimal(0)),
        cycle_median_days=_days(_median(every_cycle)),
        cycle_mean_days=_days(_mean(every_cycle)),
    )
    return SalesResult(request, reporting_currency(), rows, total)


def _days(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _mean(values: list[float] | None) -> float | None:
    return statistics.fmean(values) if values else None


# -- the registry entries -----------------------------------------------------------------------


def _range(params: ReportParams) -> tuple[dt.date, dt.date]:
    default_from, default_to = _default_range()
    return params.date_from or default_from, params.date_to or default_to


def _int_option(params: ReportParams, name: str) -> int | None:
    from embudo.reports import ReportError

    raw = params.option(name)
    if not raw:
        return None
    if not raw.isdigit():
        raise ReportError(f"{name}={raw!r} is not an id")
    return int(raw)


def _run_forecast(params: ReportParams) -> ForecastResult:
    start, end = _range(params)
    return forecast(
        ForecastRequest(
            date_from=start,
            date_to=end,
            by=params.option("by", "period"),
            interval=params.option("interval", "month"),
            pipeline_id=_int_option(params, "pipeline"),
            owner_id=_int_option(params, "owner"),
            team_id=_int_option(params, "team"),
        )
    )


def _run_sales(params: ReportParams) -> SalesResult:
    start, end = _range(params)
    by = params.option("by", "none")
    return sales_metrics(
        SalesRequest(
            date_from=start,
            date_to=end,
            by=by,
            cycle_from=params.option("cycle_from", "created"),
            pipeline_id=_int_option(params, "pipeline"),
            owner_id=_int_option(params, "owner"),
        )
    )


FORECAST = ReportSpec(
    name="forecast",
    description="Weighted pipeline and forecast categories (pipeline, best case, commit, "
    "closed won) by period, owner or team",
    run=_run_forecast,
    permission="deals.view_deal",
    options=(
        ReportOption("by", "breakdown", choices=FORECAST_BREAKDOWNS, default="period"),
        ReportOption("interval", "period length for by=period", choices=INTERVALS),
        ReportOption("pipeline", "only this pipeline (id)"),
        ReportOption("owner", "only this owner (user id)"),
        ReportOption("team", "only this team (id)"),
    ),
)
SALES = ReportSpec(
    name="sales",
    description="Win rate (won/closed and won/all), average won deal and sales cycle, by "
    "period, owner, team, product line or region",
    run=_run_sales,
    permission="deals.view_deal",
    options=(
        ReportOption("by", "breakdown", choices=SALES_BREAKDOWNS, default="none"),
        ReportOption(
            "cycle_from",
            "measure the sales cycle from the deal's creation or its first sales engagement",
            choices=CYCLE_STARTS,
        ),
        ReportOption("pipeline", "only this pipeline (id)"),
        ReportOption("owner", "only this owner (user id)"),
    ),
)

# For the report registry (see embudo.reports).
REPORTS = (
    FORECAST,
    SALES,
)


def month_range(months_back: int = 11) -> tuple[dt.date, dt.date]:
    """From the first day of the month ``months_back`` ago to the end of this month."""
    this = current("month")
    return add_months(this.start, -months_back), this.end - dt.timedelta(days=1)
