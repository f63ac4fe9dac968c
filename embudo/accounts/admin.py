"""The Django admin for API keys and the audit log: both are read-only records here.

A key's secret is shown once when it is created (``embudo apikey create``); only its digest is
kept, so the admin can list keys and revoke them, never reveal or edit one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from embudo.accounts.actions import revoke_api_key
from embudo.accounts.models import ApiKey, AuditEntry
from embudo.web.access import acting_user


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description=_("Revoke the selected API keys"))
def revoke_keys(modeladmin: Any, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
    for key in queryset.filter(revoked_at__isnull=True):
        revoke_api_key(key, actor=acting_user(request))


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = (
        "name",
        "prefix",
        "digest",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = (revoke_keys,)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the revoke action; every field stays read-only.
        return bool(request.user.is_superuser)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "object_type", "object_id", "actor", "api_key")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "action")
    list_select_related = ("actor", "api_key")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "created_at",
        "action",
        "object_type",
        "object_id",
        "actor",
        "api_key",
        "changes",
    )
