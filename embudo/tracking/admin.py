"""The Django admin for captured data, read-only: events, touchpoints, visitors and campaigns
are written by the capture endpoints and imports, and settings are edited on the Capture pages
(which validate patterns and origins and keep the audit log)."""

from __future__ import annotations

from django.contrib import admin

from embudo.accounts.admin import ReadOnlyAdmin
from embudo.tracking.models import Campaign, Event, Touchpoint, Visitor


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("type", "occurred_at", "contact", "visitor_id", "source", "url")
    list_filter = ("source", "type")
    search_fields = ("=visitor_id", "=contact__email")
    raw_id_fields = ("contact",)
    date_hierarchy = "occurred_at"
    # Counting millions of events for the paginator would cost more than showing them.
    show_full_result_count = False


@admin.register(Touchpoint)
class TouchpointAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "channel", "source", "medium", "campaign", "contact")
    list_filter = ("channel",)
    raw_id_fields = ("contact", "event")
    show_full_result_count = False


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdmin):
    list_display = ("id", "contact", "first_seen_at", "last_seen_at", "identified_at")
    search_fields = ("=id", "=contact__email")
    raw_id_fields = ("contact",)


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "first_source", "first_medium", "created_at")
    search_fields = ("name",)
