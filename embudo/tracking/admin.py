"""The Django admin for captured data, read-only: events, touchpoints, visitors and campaigns
are written by the capture endpoints and imports, and settings are edited on the Capture pages
(which validate patterns and origins and keep the audit log)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from embudo.tracking.models import Campaign, Event, Touchpoint, Visitor


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnly):
    list_display = ("type", "occurred_at", "contact", "visitor_id", "source", "url")
    list_filter = ("source", "type")
    search_fields = ("=visitor_id", "=contact__email")
    raw_id_fields = ("contact",)
    date_hierarchy = "occurred_at"
    # Counting millions of events for the paginator would cost more than showing them.
    show_full_result_count = False


@admin.register(Touchpoint)
class TouchpointAdmin(ReadOnly):
    list_display = ("occurred_at", "channel", "source", "medium", "campaign", "contact")
    list_filter = ("channel",)
    raw_id_fields = ("contact", "event")
    show_full_result_count = False


@admin.register(Visitor)
class VisitorAdmin(ReadOnly):
    list_display = ("id", "contact", "first_seen_at", "last_seen_at", "identified_at")
    search_fields = ("=id", "=contact__email")
    raw_id_fields = ("contact",)


@admin.register(Campaign)
class CampaignAdmin(ReadOnly):
    list_display = ("name", "first_source", "first_medium", "created_at")
    search_fields = ("name",)
