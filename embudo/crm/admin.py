"""The Django admin for CRM records, for admins fixing data by hand.

Writes go through ``crm.actions`` so the audit log sees them; the lifecycle stage is read-only
here because a stage change must be recorded in the history (use the contact page or the API).
Contacts and companies are created on the pages, through the API or by import, not here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from embudo.accounts.admin import ReadOnlyAdmin
from embudo.crm import actions
from embudo.crm.models import (
    Activity,
    Company,
    Contact,
    LifecycleTransition,
    PropertyDefinition,
)
from embudo.errors import ValidationFailed
from embudo.web.access import acting_user


def _changed(form: ModelForm[Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The edited fields in the shape the actions take (foreign keys as ``*_id``)."""
    data: dict[str, Any] = {}
    for name in form.changed_data:
        key = f"{name}_id" if f"{name}_id" in fields else name
        if key not in fields:
            continue
        value = form.cleaned_data[name]
        data[key] = value.pk if isinstance(value, Model) else value
    return data


class ActionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Saves and deletes through the CRM actions; adding is done elsewhere."""

    update_action: Any = None
    delete_action: Any = None
    fields_for_action: tuple[str, ...] = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        original = type(obj).objects.get(pk=obj.pk)
        try:
            self.update_action(
                original, _changed(form, self.fields_for_action), actor=acting_user(request)
            )
        except ValidationFailed as failed:
            self.message_user(request, str(failed), messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_action(obj, actor=acting_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_action(obj, actor=acting_user(request))


class LifecycleTransitionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LifecycleTransition
    fields = ("changed_at", "from_stage", "to_stage", "cause", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("changed_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(ActionAdmin):
    update_action = staticmethod(actions.update_contact)
    delete_action = staticmethod(actions.delete_contact)
    fields_for_action = actions.CONTACT_FIELDS
    list_display = (
        "id",
        "email",
        "first_name",
        "last_name",
        "company",
        "lifecycle_stage",
        "lead_status",
        "owner",
        "updated_at",
    )
    list_filter = ("lifecycle_stage", "lead_status", "owner")
    search_fields = ("email", "first_name", "last_name", "external_id")
    list_select_related = ("company", "owner")
    autocomplete_fields = ("company",)
    raw_id_fields = ("owner",)
    readonly_fields = (
        "lifecycle_stage",
        "lifecycle_stage_changed_at",
        "properties",
        "created_at",
        "updated_at",
    )
    show_full_result_count = False  # no COUNT(*) over every contact on each list page
    inlines = (LifecycleTransitionInline,)


@admin.register(Company)
class CompanyAdmin(ActionAdmin):
    update_action = staticmethod(actions.update_company)
    delete_action = staticmethod(actions.delete_company)
    fields_for_action = actions.COMPANY_FIELDS
    list_display = ("id", "name", "domain", "industry", "employees", "country", "owner")
    list_filter = ("industry", "country")
    search_fields = ("name", "domain", "external_id")
    raw_id_fields = ("owner",)
    readonly_fields = ("properties", "created_at", "updated_at")
    show_full_result_count = False


@admin.register(Activity)
class ActivityAdmin(ActionAdmin):
    update_action = staticmethod(actions.update_activity)
    delete_action = staticmethod(actions.delete_activity)
    fields_for_action = actions.ACTIVITY_FIELDS
    list_display = ("id", "kind", "subject", "contact", "occurred_at", "due_at", "done", "actor")
    list_filter = ("kind", "done")
    search_fields = ("subject", "contact__email")
    list_select_related = ("contact", "actor")
    raw_id_fields = ("contact", "actor")
    readonly_fields = ("contact", "actor", "created_at", "updated_at")
    show_full_result_count = False


@admin.register(LifecycleTransition)
class LifecycleTransitionAdmin(ReadOnlyAdmin):
    """The history is a record of what happened: read-only."""

    list_display = ("contact", "from_stage", "to_stage", "cause", "changed_at", "actor")
    list_filter = ("to_stage", "cause")
    search_fields = ("contact__email",)
    list_select_related = ("contact", "actor")
    show_full_result_count = False


@admin.register(PropertyDefinition)
class PropertyDefinitionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Definitions are created with ``crm.actions.define_property`` (import, API); a label and
    choices can be edited here, the name and type cannot, since stored values depend on them."""

    list_display = ("object_type", "name", "label", "type", "created_at")
    list_filter = ("object_type", "type")
    search_fields = ("name", "label")
    readonly_fields = ("object_type", "name", "type", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
