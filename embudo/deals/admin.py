"""The Django admin for deals' settings and lists, for admins and sales managers.

Exchange rates, goals, lost reasons and product lines are saved through ``deals.actions`` (so
open deals follow a new rate and the audit log sees every change). Deals themselves are read
here and worked on the pages or through the API, where their stage moves are recorded.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from embudo.deals import actions
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
    TeamMembership,
)
from embudo.deals.periods import period_of
from embudo.errors import ValidationFailed
from embudo.web.access import acting_user


def _refused(admin_: admin.ModelAdmin[Any], request: HttpRequest, failed: ValidationFailed) -> None:
    admin_.message_user(request, str(failed), messages.ERROR)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("currency", "rate", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            actions.set_exchange_rate(obj.currency, obj.rate, actor=acting_user(request))
        except ValidationFailed as failed:
            _refused(self, request, failed)


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("period_kind", "period_start", "amount", "team", "owner")
    list_filter = ("period_kind", "team")
    readonly_fields = ("created_by", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            actions.set_goal(
                period_of(obj.period_kind, obj.period_start),
                obj.amount,
                team=obj.team,
                owner=obj.owner,
                actor=acting_user(request),
            )
        except ValidationFailed as failed:
            _refused(self, request, failed)


@admin.register(LostReason)
class LostReasonAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "active", "position")
    list_editable = ("active", "position")


@admin.register(ProductLine)
class ProductLineAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "active")


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TeamMembership
    extra = 1


@admin.register(SalesTeam)
class SalesTeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "created_at")
    inlines = (MembershipInline,)


class StageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Stage
    extra = 0
    fields = ("name", "position", "probability", "kind", "forecast_category")
    readonly_fields = ("kind",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a new stage changes what the pipeline means: add it through the API


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "is_default", "position")
    inlines = (StageInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created with their stages through POST /api/v1/pipelines


class StageChangeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = DealStageChange
    extra = 0
    can_delete = False
    readonly_fields = ("from_stage", "to_stage", "changed_at", "actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "stage", "status", "amount", "currency", "owner", "expected_close_date")
    list_filter = ("status", "pipeline", "forecast_category")
    search_fields = ("name", "external_id")
    list_select_related = ("stage", "owner")
    inlines = (StageChangeInline,)
    readonly_fields = [f.name for f in Deal._meta.fields] + ["contacts"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read here; deals are worked on the pipeline pages and through the API
