"""The Django admin for the predictive model: its settings (how many new outcomes start a
background retrain) and the versions, read-only (they are trained, never edited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from embudo.accounts.admin import ReadOnlyAdmin
from embudo.predictive.models import PredictiveModel, PredictiveSettings


@admin.register(PredictiveSettings)
class PredictiveSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("retrain_after", "excluded_fields", "last_run_at", "last_run_ok")
    fields = ("retrain_after", "excluded_fields", "last_run_at", "last_run_ok", "last_run_message")
    readonly_fields = ("last_run_at", "last_run_ok", "last_run_message")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PredictiveSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PredictiveModel)
class PredictiveModelAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "algorithm", "outcomes", "positives", "is_active")
    exclude = ("estimator",)
