"""Reads of pipelines and deals for the API, the pages and other apps; who may see which deal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from embudo.accounts.actors import Viewer
from embudo.accounts.roles import ADMIN, SALES, SALES_MANAGER, role_of
from embudo.deals.models import (
    Deal,
    DealStageChange,
    ExchangeRate,
    Goal,
    LostReason,
    Pipeline,
    ProductLine,
    SalesTeam,
    Stage,
)

DEAL_PERMISSION = "deals.view_deal"


def deal_visibility(user: Viewer) -> Q:
    """The deals a user may see: a sales rep their own and unassigned ones, managers and admins
    all, and every other role (marketing) none."""
    role = role_of(user)
    if role in {ADMIN, SALES_MANAGER}:
        return Q()
    if role == SALES:
        return Q(owner=user) | Q(owner__isnull=True)
    return Q(pk__in=[])


def visible_deals(user: Viewer | None) -> QuerySet[Deal]:
    """``user=None`` stands for an API key, which sees every deal within its scopes."""
    query = Deal.objects.all()
    if user is not None:
        query = query.filter(deal_visibility(user))
    return query


@dataclass(frozen=True)
class DealFilter:
    search: str = ""
    pipeline_id: int | None = None
    stage_id: int | None = None
    status: str = ""
    owner_id: int | None = None
    unassigned: bool = False
    company_id: int | None = None
    contact_id: int | None = None
    product_line_id: int | None = None
    closing_from: dt.date | None = None
    closing_to: dt.date | None = None


def deal_list(user: Viewer | None, filters: DealFilter) -> QuerySet[Deal]:
    """Deals the caller may see, filtered, newest first, with what a list shows joined in."""
    query = visible_deals(user).select_related(
        "stage", "pipeline", "owner", "company", "product_line", "lost_reason"
    )
    if filters.pipeline_id is not None:
        query = query.filter(pipeline_id=filters.pipeline_id)
    if filters.stage_id is not None:
        query = query.filter(stage_id=filters.stage_id)
    if filters.status:
        query = query.filter(status=filters.status)
    if filters.owner_id is not None:
        query = query.filter(owner_id=filters.owner_id)
    if filters.unassigned:
        query = query.filter(owner__isnull=True)
    if filters.company_id is not None:
        query = query.filter(company_id=filters.company_id)
    if filters.contact_id is not None:
        query = query.filter(contacts__id=filters.contact_id)
    if filters.product_line_id is not None:
        query = query.filter(product_line_id=filters.product_line_id)
    if filters.closing_from is not None:
        query = query.filter(expected_close_date__gte=filters.closing_from)
    if filters.closing_to is not None:
        query = query.filter(expected_close_date__lte=filters.closing_to)
    if term := filters.search.strip():
        query = query.filter(
            Q(name__icontains=term) | Q(company__name__istartswith=term) | Q(external_id=term)
        )
    return query.order_by("-id")


def deal_detail(user: Viewer | None, deal_id: int) -> Deal | None:
    return (
        visible_deals(user)
        .select_related("stage", "pipeline", "owner", "company", "product_line", "lost_reason")
        .prefetch_related("contacts")
        .filter(pk=deal_id)
        .first()
    )


def stage_history(deal: Deal) -> QuerySet[DealStageChange]:
    return deal.stage_changes.select_related("from_stage", "to_stage", "actor").order_by(
        "changed_at", "id"
    )


def pipelines() -> QuerySet[Pipeline]:
    return Pipeline.objects.prefetch_related(
        Prefetch("stages", queryset=Stage.objects.order_by("position", "id"))
    ).order_by("position", "id")


@dataclass(frozen=True)
class BoardColumn:
    stage: Stage
    deals: list[Deal]
    count: int
    total: Any  # Decimal, in the reporting currency

    @property
    def hidden_count(self) -> int:
        """Deals at this stage beyond the ones shown."""
        return self.count - len(self.deals)

    @property
    def hidden_total(self) -> Any:
        return self.total - sum((d.amount_reporting for d in self.deals), 0)


def board(
    user: Viewer | None, pipeline: Pipeline, *, per_stage: int = 50, owner_id: int | None = None
) -> list[BoardColumn]:
    """Each stage of a pipeline with its deal count, total and its most recently moved deals."""
    base = visible_deals(user).filter(pipeline=pipeline)
    if owner_id is not None:
        base = base.filter(owner_id=owner_id)
    totals: dict[int, dict[str, Any]] = {
        row["stage_id"]: dict(row)
        for row in base.values("stage_id").annotate(n=Count("id"), total=Sum("amount_reporting"))
    }
    columns = []
    for stage in pipeline.stages.order_by("position", "id"):
        deals = list(
            base.filter(stage=stage)
            .select_related("owner", "company")
            .order_by("-stage_changed_at", "-id")[:per_stage]
        )
        row: dict[str, Any] = totals.get(stage.pk, {})
        columns.append(BoardColumn(stage, deals, row.get("n", 0), row.get("total") or 0))
    return columns


def lost_reasons(active_only: bool = True) -> QuerySet[LostReason]:
    query = LostReason.objects.all()
    return query.filter(active=True) if active_only else query


def product_lines() -> QuerySet[ProductLine]:
    return ProductLine.objects.filter(active=True)


def teams() -> QuerySet[SalesTeam]:
    return SalesTeam.objects.all()


def exchange_rates() -> QuerySet[ExchangeRate]:
    return ExchangeRate.objects.all()


def deal_owners() -> QuerySet[Any]:
    """Users who may own deals (anyone holding a selling role), by name."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name__in=[SALES, SALES_MANAGER, ADMIN]) | Q(is_superuser=True))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def goals() -> QuerySet[Goal]:
    return Goal.objects.select_related("team", "owner")
