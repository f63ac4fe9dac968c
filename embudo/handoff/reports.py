"""The SLA report both teams read: sales' response times and verdicts by rep or team, and
marketing's MQLs delivered against its commitments, by period and source; plus the live
tracking of the commitments and the loop back of rejection reasons."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from embudo.crm.models import Contact
from embudo.deals import queries as deals_queries
from embudo.deals.periods import Period, period_of
from embudo.handoff import assignment
from embudo.handoff.models import (
    Handoff,
    MarketingCommitment,
    QualityMeasure,
    Verdict,
)
from embudo.reports import ReportOption, ReportParams, ReportSpec, Table

BREAKDOWNS = ("rep", "team")
INTERVALS = ("month", "quarter")
DEFAULT_DAYS = 365


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _window(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
    """The report's period as aware datetimes: ``to`` is inclusive; a year back by default."""
    end_day = (date_to or timezone.localdate()) + dt.timedelta(days=1)
    start_day = date_from or end_day - dt.timedelta(days=DEFAULT_DAYS)
    make = lambda day: timezone.make_aware(dt.datetime.combine(day, dt.time()))  # noqa: E731
    return make(start_day), make(end_day)


@dataclass(frozen=True)
class SalesRow:
    key: int | None
    label: str
    handoffs: int
    touched: int
    first_touch_met: int
    first_touch_breached: int
    met: int
    breached: int
    pending: int
    accepted: int
    rejected: int
    recycled: int
    median_minutes: float | None
    p90_minutes: float | None

    @property
    def met_rate(self) -> float | None:
        return _rate(self.met, self.met + self.breached)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "handoffs": self.handoffs,
            "touched": self.touched,
            "first_touch_met": self.first_touch_met,
            "first_touch_breached": self.first_touch_breached,
            "met": self.met,
            "breached": self.breached,
            "pending": self.pending,
            "met_rate": self.met_rate,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "recycled": self.recycled,
            "median_first_touch_minutes": self.median_minutes,
            "p90_first_touch_minutes": self.p90_minutes,
        }


@dataclass(frozen=True)
class MarketingRow:
    period: str
    source: str  # "" is the period's total
    delivered: int
    accepted: int
    decided: int
    committed_volume: int | None
    committed_rate: float | None
    measure: str

    @property
    def acceptance_rate(self) -> float | None:
        return _rate(self.accepted, self.decided)

    @property
    def mql_to_sql_rate(self) -> float | None:
        return _rate(self.accepted, self.delivered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "source": self.source or None,
            "delivered": self.delivered,
            "committed_volume": self.committed_volume,
            "accepted": self.accepted,
            "decided": self.decided,
            "acceptance_rate": self.acceptance_rate,
            "mql_to_sql_rate": self.mql_to_sql_rate,
            "committed_rate": self.committed_rate,
            "quality_measure": self.measure,
        }


@dataclass(frozen=True)
class SlaReport:
    date_from: dt.date
    date_to: dt.date
    by: str
    interval: str
    sales: list[SalesRow]
    sales_total: SalesRow
    marketing: list[MarketingRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "sla",
            "request": {
                "from": self.date_from.isoformat(),
                "to": self.date_to.isoformat(),
                "by": self.by,
                "interval": self.interval,
            },
            "sales": {
                "rows": [row.to_dict() for row in self.sales],
                "total": self.sales_total.to_dict(),
            },
            "marketing": {"rows": [row.to_dict() for row in self.marketing]},
        }

    def headline(self) -> list[tuple[str, Any]]:
        """The few numbers a dashboard tile shows."""
        total = self.sales_total
        return [
            ("MQLs handed off", total.handoffs),
            ("SLA met", "—" if total.met_rate is None else f"{total.met_rate:.0%}"),
            ("Breaches", total.breached),
            ("First touch, median (min)", total.median_minutes),
        ]

    def table(self) -> Table:
        columns = [
            "side",
            "group",
            "period",
            "handoffs_or_mqls",
            "met_rate",
            "breached",
            "median_first_touch_min",
            "p90_first_touch_min",
            "committed_mqls",
            "acceptance_rate",
            "committed_rate",
        ]
        rows: list[list[Any]] = []
        for row in [*self.sales, self.sales_total]:
            rows.append(
                [
                    "sales",
                    row.label,
                    "",
                    row.handoffs,
                    row.met_rate,
                    row.breached,
                    row.median_minutes,
                    row.p90_minutes,
                    "",
                    _rate(row.accepted, row.accepted + row.rejected + row.recycled),
                    "",
                ]
            )
        for m in self.marketing:
            rate = (
                m.acceptance_rate if m.measure == QualityMeasure.ACCEPTANCE else m.mql_to_sql_rate
            )
            rows.append(
                [
                    "marketing",
                    m.source or "(all sources)",
                    m.period,
                    m.delivered,
                    "",
                    "",
                    "",
                    "",
                    m.committed_volume if m.committed_volume is not None else "",
                    rate,
                    m.committed_rate if m.committed_rate is not None else "",
                ]
            )
        return Table(columns, rows)


def _percentiles(minutes: np.ndarray, counts: np.ndarray) -> tuple[float | None, float | None]:
    """Median and p90 of a histogram of whole minutes (value, how many)."""
    if counts.sum() == 0:
        return None, None
    values = np.repeat(minutes, counts)
    median, p90 = np.percentile(values, [50, 90])
    return round(float(median), 1), round(float(p90), 1)


# One grouped pass yields every count: the report reads the index, never the rows.
_STATE_FIELDS = ("state", "first_touch_state", "verdict")


def sales_side(base: QuerySet[Handoff], by: str) -> tuple[list[SalesRow], SalesRow]:
    """Counts per rep or team from one grouped query over the states; the first-touch
    percentiles from a per-minute histogram (a few thousand rows, whatever the handoffs)."""
    key = "owner_id" if by == "rep" else "team_id"
    counts: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNT_NAMES, 0))
    for row in base.values(key, *_STATE_FIELDS).annotate(n=Count("id")).order_by():
        c, n = counts[row[key]], row["n"]
        c["handoffs"] += n
        c[row["state"]] += n
        c["first_touch_" + row["first_touch_state"]] += n
        if row["verdict"]:
            c[row["verdict"]] += n
    histogram: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    minute = ExpressionWrapper(F("first_touch_seconds") / 60, output_field=IntegerField())
    query = (
        base.filter(first_touch_seconds__isnull=False)
        .annotate(minute=minute)
        .values(key, "minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in query:
        histogram[row[key]].append((row["minute"], row["n"]))
    if by == "rep":
        users = get_user_model().objects.in_bulk([k for k in counts if k is not None])
        names = {pk: u.get_full_name() or u.get_username() for pk, u in users.items()}
        nobody = "(fallback queue)"
    else:
        names = dict(deals_queries.teams().filter(pk__in=list(counts)).values_list("pk", "name"))
        nobody = "(no team)"
    rows = []
    everyone: dict[int, int] = defaultdict(int)
    for group_key, c in counts.items():
        pairs = np.array(histogram.get(group_key, []), dtype=np.int64).reshape(-1, 2)
        for value, n in histogram.get(group_key, []):
            everyone[value] += n
        median, p90 = _percentiles(pairs[:, 0], pairs[:, 1])
        label = names.get(group_key, nobody) if group_key is not None else nobody
        c["touched"] = int(pairs[:, 1].sum())
        rows.append(_sales_row(group_key, str(label), c, median, p90))
    rows.sort(key=lambda r: r.label.lower())
    totals = {name: sum(c[name] for c in counts.values()) for name in (*_COUNT_NAMES, "touched")}
    all_pairs = np.array(sorted(everyone.items()), dtype=np.int64).reshape(-1, 2)
    median, p90 = _percentiles(all_pairs[:, 0], all_pairs[:, 1])
    return rows, _sales_row(None, "Total", totals, median, p90)


_COUNT_NAMES = (
    "handoffs",
    "first_touch_met",
    "first_touch_breached",
    "first_touch_pending",
    "met",
    "breached",
    "pending",
    "accepted",
    "rejected",
    "recycled",
)


def _sales_row(
    key: Any, label: str, c: dict[str, int], median: float | None, p90: float | None
) -> SalesRow:
    return SalesRow(
        key=key,
        label=label,
        handoffs=c["handoffs"],
        touched=c["touched"],
        first_touch_met=c["first_touch_met"],
        first_touch_breached=c["first_touch_breached"],
        met=c["met"],
        breached=c["breached"],
        pending=c["pending"],
        accepted=c["accepted"],
        rejected=c["rejected"],
        recycled=c["recycled"],
        median_minutes=median,
        p90_minutes=p90,
    )


def _commitments(start: dt.date, end: dt.date) -> dict[str, MarketingCommitment]:
    """The company-wide commitments (no segment) by period label."""
    found: dict[str, MarketingCommitment] = {}
    for commitment in MarketingCommitment.objects.filter(
        segment_name="", period_start__gte=start - dt.timedelta(days=92), period_start__lt=end
    ):
        found[period_of(commitment.period_kind, commitment.period_start).label] = commitment
    return found


def _buckets(interval: str, start: dt.date, end: dt.date) -> list[Period]:
    periods = []
    period = period_of(interval, start)
    while period.start < end:
        periods.append(period)
        period = period_of(interval, period.end)
    return periods


def marketing_side(
    base: QuerySet[Handoff], interval: str, start: dt.date, end: dt.date
) -> list[MarketingRow]:
    """MQLs delivered, accepted and decided by period and source in one grouped query; the
    period of each handoff is a CASE over the period bounds (plain comparisons the index
    serves), not a time-zone truncation per row."""
    periods = _buckets(interval, start, end)
    bucket = Case(
        *(When(handed_off_at__lt=p.end_datetime(), then=Value(p.label)) for p in periods),
        default=Value(""),
        output_field=CharField(),
    )
    by_period: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    query = (
        base.annotate(bucket=bucket)
        .values("bucket", "source", "verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in query:
        values = by_period[row["bucket"]].setdefault(
            row["source"], {"delivered": 0, "accepted": 0, "decided": 0}
        )
        values["delivered"] += row["n"]
        if row["verdict"]:
            values["decided"] += row["n"]
        if row["verdict"] == Verdict.ACCEPTED:
            values["accepted"] += row["n"]
    commitments = _commitments(start, end)
    rows: list[MarketingRow] = []
    for label in sorted(k for k in by_period if k):
        sources = by_period[label]
        commitment = commitments.get(label)
        measure = commitment.quality_measure if commitment else QualityMeasure.ACCEPTANCE
        rate = (
            float(commitment.min_rate) if commitment and commitment.min_rate is not None else None
        )
        total = {
            k: sum(s[k] for s in sources.values()) for k in ("delivered", "accepted", "decided")
        }
        rows.append(
            MarketingRow(
                label,
                "",
                **total,
                committed_volume=commitment.mql_volume if commitment else None,
                committed_rate=rate,
                measure=measure,
            )
        )
        for source, values in sorted(sources.items()):
            rows.append(
                MarketingRow(
                    label,
                    source or "(none)",
                    **values,
                    committed_volume=None,
                    committed_rate=rate,
                    measure=measure,
                )
            )
    return rows


def sla_report(
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    *,
    by: str = "rep",
    interval: str = "month",
) -> SlaReport:
    start, end = _window(date_from, date_to)
    base = Handoff.objects.filter(handed_off_at__gte=start, handed_off_at__lt=end)
    sales, total = sales_side(base, by)
    marketing = marketing_side(base, interval, start.date(), end.date())
    return SlaReport(
        date_from=timezone.localtime(start).date(),
        date_to=timezone.localtime(end).date() - dt.timedelta(days=1),
        by=by,
        interval=interval,
        sales=sales,
        sales_total=total,
        marketing=marketing,
    )


def _run(params: ReportParams) -> SlaReport:
    return sla_report(
        params.date_from,
        params.date_to,
        by=params.option("by", "rep"),
        interval=params.option("interval", "month"),
    )


SLA = ReportSpec(
    name="sla",
    description="The two-sided SLA: sales' first-touch times (median, p90), % met and breaches "
    "by rep or team; marketing's MQLs and acceptance against its commitments, by period and "
    "source",
    run=_run,
    permission="handoff.view_handoff",
    options=(
        ReportOption("by", "sales breakdown", choices=BREAKDOWNS, default="rep"),
        ReportOption("interval", "marketing period", choices=INTERVALS, default="month"),
    ),
)

# For the report registry (see embudo.reports).
REPORTS = (SLA,)


# -- marketing commitments, live -----------------------------------------------------------------


@dataclass(frozen=True)
class CommitmentStatus:
    commitment: MarketingCommitment
    period: Period
    delivered: int
    accepted: int
    decided: int
    elapsed: float
    forecast: int

    @property
    def rate(self) -> float | None:
        if self.commitment.quality_measure == QualityMeasure.MQL_TO_SQL:
            return _rate(self.accepted, self.delivered)
        return _rate(self.accepted, self.decided)

    @property
    def volume_pace(self) -> str:
        target = self.commitment.mql_volume
        if self.elapsed >= 1:
            return "met" if self.delivered >= target else "missed"
        if self.delivered >= target:
            return "met"
        if self.elapsed == 0:
            return "not started"
        return "on track" if self.forecast >= target else "behind"

    @property
    def quality_pace(self) -> str:
        wanted = self.commitment.min_rate
        if wanted is None:
            return ""
        if self.rate is None:
            return "no verdicts yet"
        return "on track" if self.rate >= float(wanted) else "below"

    def to_dict(self) -> dict[str, Any]:
        c = self.commitment
        return {
            "id": c.pk,
            "period": self.period.label,
            "period_kind": c.period_kind,
            "segment": c.segment_name or None,
            "committed_volume": c.mql_volume,
            "delivered": self.delivered,
            "forecast": self.forecast,
            "elapsed": round(self.elapsed, 4),
            "volume_pace": self.volume_pace,
            "quality_measure": c.quality_measure,
            "min_rate": float(c.min_rate) if c.min_rate is not None else None,
            "rate": self.rate,
            "accepted": self.accepted,
            "decided": self.decided,
            "quality_pace": self.quality_pace,
        }


def commitment_status(
    commitment: MarketingCommitment, now: dt.datetime | None = None
) -> CommitmentStatus:
    """Delivered so far, the rate, and a linear forecast of the volume at period end."""
    now = now or timezone.now()
    period = period_of(commitment.period_kind, commitment.period_start)
    base = Handoff.objects.filter(
        handed_off_at__gte=period.start_datetime(), handed_off_at__lt=period.end_datetime()
    )
    if commitment.condition:
        base = base.filter(
            contact__in=Contact.objects.filter(assignment.condition_q(commitment.condition, now))
        )
    counts = base.aggregate(
        delivered=Count("id"),
        accepted=Count("id", filter=Q(verdict=Verdict.ACCEPTED)),
        decided=Count("id", filter=~Q(verdict="")),
    )
    elapsed = period.elapsed_fraction(now)
    delivered = counts["delivered"]
    forecast = round(delivered / elapsed) if elapsed > 0 else 0
    return CommitmentStatus(
        commitment, period, delivered, counts["accepted"], counts["decided"], elapsed, forecast
    )


def current_commitments(now: dt.datetime | None = None) -> list[CommitmentStatus]:
    """The commitments whose period contains today, and the last ones before."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    found = MarketingCommitment.objects.filter(
        period_start__lte=today, period_start__gte=today - dt.timedelta(days=200)
    ).order_by("-period_start", "period_kind", "segment_name")
    return [commitment_status(c, now) for c in found]


# -- the loop back -------------------------------------------------------------------------------

FEEDBACK_BREAKDOWNS = ("source", "campaign", "persona", "score_band", "fit_rule", "reason")


def rejections_by(
    by: str, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[dict[str, Any]]:
    """Decided handoffs by one attribute: how many were rejected and why (reasons' counts)."""
    if by not in FEEDBACK_BREAKDOWNS:
        raise ValueError(f"{by!r} is not one of {', '.join(FEEDBACK_BREAKDOWNS)}")
    start, end = _window(date_from, date_to)
    base = Handoff.objects.filter(handed_off_at__gte=start, handed_off_at__lt=end).exclude(
        verdict=""
    )
    if by == "fit_rule":
        grouped = _by_fit_rule(base)
    else:
        key = "reason__name" if by == "reason" else by
        grouped = [
            (row[key] or "(none)", row["verdict"], row["reason__name"], row["n"])
            for row in base.values(key, "verdict", "reason__name").annotate(n=Count("id"))
        ]
    rows: dict[str, dict[str, Any]] = {}
    for label, verdict, reason, n in grouped:
        entry = rows.setdefault(
            label,
            {
                "value": label,
                "decided": 0,
                "accepted": 0,
                "rejected": 0,
                "recycled": 0,
                "reasons": defaultdict(int),
            },
        )
        entry["decided"] += n
        entry[verdict] += n
        if reason:
            entry["reasons"][reason] += n
    out = []
    for entry in rows.values():
        entry["reasons"] = dict(sorted(entry["reasons"].items(), key=lambda kv: -kv[1]))
        entry["rejection_rate"] = _rate(entry["rejected"], entry["decided"])
        out.append(entry)
    out.sort(key=lambda e: (-e["rejected"], e["value"]))
    return out


# The fit-rule breakdown scores the most recent decided MQLs only: scoring explains contacts
# one by one, and a few thousand verdicts say what the rules get wrong.
FIT_RULE_SAMPLE = 5_000


def _by_fit_rule(base: QuerySet[Handoff]) -> list[tuple[str, str, str | None, int]]:
    """(fit rule, verdict, reason, 1) for each fit rule that counted for each decided MQL,
    under the first enabled scoring model."""
    from embudo.scoring import queries as scoring_queries

    models_ = list(scoring_queries.scoring_models().filter(enabled=True)[:1])
    if not models_:
        return []
    decided = list(
        base.order_by("-handed_off_at").values_list("contact_id", "verdict", "reason__name")[
            :FIT_RULE_SAMPLE
        ]
    )
    scores = scoring_queries.scores_for([c for c, _v, _r in decided], models=models_)
    rows: list[tuple[str, str, str | None, int]] = []
    for contact_id, verdict, reason in decided:
        for score in scores.get(contact_id, [])[:1]:
            for rule in score.reasons:
                if rule.kind == "fit" and rule.points > 0:
                    rows.append((rule.rule, verdict, reason, 1))
    return rows


# Contact and company attributes whose values the fit suggestions look at.
FIT_ATTRIBUTES = {
    "industry": "contact__company__industry",
    "country": "contact__company__country",
    "job_title": "contact__job_title",
    "source": "source",
}
MIN_DECIDED = 5
BAD_FIT_SHARE = 0.6


def fit_suggestions(
    date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[dict[str, Any]]:
    """Attribute values most of whose MQLs sales rejected as a bad fit: candidates for a lower
    fit score (or a negative fit rule) in scoring."""
    start, end = _window(date_from, date_to)
    base = Handoff.objects.filter(handed_off_at__gte=start, handed_off_at__lt=end).exclude(
        verdict=""
    )
    suggestions = []
    for attribute, path in FIT_ATTRIBUTES.items():
        query = (
            base.values(path)
            .annotate(
                decided=Count("id"),
                bad_fit=Count("id", filter=Q(verdict=Verdict.REJECTED, reason__bad_fit=True)),
            )
            .filter(decided__gte=MIN_DECIDED)
        )
        for row in query:
            share = row["bad_fit"] / row["decided"]
            if row[path] and share >= BAD_FIT_SHARE:
                suggestions.append(
                    {
                        "attribute": attribute,
                        "value": row[path],
                        "decided": row["decided"],
                        "bad_fit": row["bad_fit"],
                        "share": round(share, 4),
                        "suggestion": f"MQLs with {attribute} = {row[path]!r} are rejected as a "
                        f"bad fit {share:.0%} of the time: lower their fit score",
                    }
                )
    suggestions.sort(key=lambda s: (-s["share"], -s["decided"]))
    return suggestions
