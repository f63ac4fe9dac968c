"""The contact and company pages: thin views that parse the request, check access, call one
query or action, and render.

Access is enforced here, per role: every page needs a logged-in user with a role; a contact the
user may not see (a sales rep's view of another rep's contact) is a 404, as if it did not exist;
a form the role may not submit is a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from embudo.accounts.actors import RequestUser
from embudo.accounts.roles import SALES, role_of
from embudo.crm import actions, queries
from embudo.crm.forms import ActivityForm, ContactFilterForm, StageForm
from embudo.crm.models import Company, Contact, LifecycleStage, ObjectType, PropertyType
from embudo.crm.properties import PropertyValueError, parse_date
from embudo.errors import ValidationFailed
from embudo.web.access import acting_user, role_required

PAGE_SIZE = 25
# Past this many matches the list says "more than 10,000" instead of counting every row.
COUNT_CAP = 10_000


# -- contacts -----------------------------------------------------------------------------------


@require_GET
@role_required("crm.view_contact")
def contact_list(request: HttpRequest) -> HttpResponse:
    form = ContactFilterForm(request.GET)
    form.is_valid()  # a malformed value is dropped from cleaned_data and filters nothing
    params = form.cleaned_data
    filters = queries.ContactFilter(
        search=params.get("q") or "",
        stage=params.get("stage") or "",
        company_id=params.get("company"),
        **_owner_filter(request.user, params.get("owner") or ""),
    )
    page = queries.contact_page(
        request.user,
        filters,
        after=params.get("after"),
        before=params.get("before"),
        size=PAGE_SIZE,
    )
    if page.newer is None and page.older is None:
        # Everything fits on this one page: its length is the count, no second scan needed.
        total, capped = len(page.contacts), False
    elif filters.search:
        # No index serves a name search, so counting its matches would read every contact
        # again (40-100 ms at 100,000); "more than a page" is what the list says instead.
        total, capped = len(page.contacts), True
    else:
        counted = queries.count_up_to(queries.contact_list(request.user, filters), COUNT_CAP)
        total, capped = min(counted, COUNT_CAP), counted > COUNT_CAP
    kept = {k: v for k, v in (("q", filters.search), ("stage", filters.stage)) if v}
    for name in ("owner", "company"):
        if params.get(name):
            kept[name] = str(params[name])
    is_sales = role_of(request.user) == SALES
    return render(
        request,
        "crm/contact_list.html",
        {
            "page": page,
            "total": total,
            "total_capped": capped,
            "filters": kept,
            "stages": LifecycleStage.choices,
            "owners": [] if is_sales else queries.contact_owners(),
            "newer_url": _list_url(kept, before=page.newer) if page.newer else "",
            "older_url": _list_url(kept, after=page.older) if page.older else "",
            "is_filtered": bool(kept),
            "company": (
                Company.objects.filter(pk=filters.company_id).first()
                if filters.company_id
                else None
            ),
        },
    )


def _owner_filter(user: RequestUser, owner: str) -> dict[str, Any]:
    if owner == "me":
        return {"owner_id": user.pk}
    if owner == "none":
        return {"unassigned": True}
    if owner.isdigit():
        return {"owner_id": int(owner)}
    return {}


def _list_url(kept: dict[str, str], **cursor: int) -> str:
    return "?" + urlencode({**kept, **cursor})


@require_GET
@role_required("crm.view_contact")
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _visible_contact(request, contact_id)
    return _render_contact(request, contact)


def _visible_contact(request: HttpRequest, contact_id: int) -> Contact:
    return get_object_or_404(
        queries.visible_contacts(request.user).select_related("company", "owner"), pk=contact_id
    )


def _render_contact(
    request: HttpRequest,
    contact: Contact,
    *,
    stage_form: StageForm | None = None,
    activity_form: ActivityForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "custom_properties": _custom_properties(contact),
            "timeline": queries.timeline(contact, limit=100),
            "history": queries.lifecycle_history(contact),
            "can_change": user.has_perm("crm.change_contact"),
            "can_log": user.has_perm("crm.add_activity"),
            "stage_form": stage_form
            or StageForm(initial={"lifecycle_stage": contact.lifecycle_stage}),
            "activity_form": activity_form or ActivityForm(initial={"kind": "note"}),
        },
        status=status,
    )


@dataclass(frozen=True)
class ShownProperty:
    label: str
    type: str
    value: Any


def _custom_properties(record: Contact | Company) -> list[ShownProperty]:
    """The record's custom properties with their labels, as typed values for display.

    Defined properties come first in label order, then any stored value without a definition.
    """
    object_type = ObjectType.CONTACT if isinstance(record, Contact) else ObjectType.COMPANY
    stored = dict(record.properties or {})
    shown: list[ShownProperty] = []
    for definition in queries.property_definitions(object_type):
        if definition.name in stored:
            value = stored.pop(definition.name)
            shown.append(
                ShownProperty(definition.label, definition.type, _typed(value, definition.type))
            )
    shown.extend(ShownProperty(name, PropertyType.TEXT, value) for name, value in stored.items())
    return shown


def _typed(value: Any, type_: str) -> Any:
    if type_ == PropertyType.DATE and isinstance(value, str):
        try:
            return parse_date(value)
        except PropertyValueError:
            return value
    return value


@require_POST
@role_required("crm.change_contact")
def contact_change_stage(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _visible_contact(request, contact_id)
    form = StageForm(request.POST)
    if form.is_valid():
        try:
            transition = actions.set_lifecycle_stage(
                contact,
                form.cleaned_data["lifecycle_stage"],
                cause="manual",
                actor=acting_user(request),
                note=form.cleaned_data["note"],
            )
        except ValidationFailed as failed:
            _copy_errors(form, failed, {"lifecycle_stage": "lifecycle_stage"})
        else:
            if transition is None:
                messages.info(request, _("The contact is already at that stage."))
            else:
                messages.success(
                    request,
                    _("Lifecycle stage changed to %(stage)s.")
                    % {"stage": contact.get_lifecycle_stage_display()},
                )
            return redirect("crm:contact", contact_id=contact.pk)
    return _render_contact(request, contact, stage_form=form, status=400)


@require_POST
@role_required("crm.add_activity")
def contact_log_activity(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _visible_contact(request, contact_id)
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            activity = actions.log_activity(contact, form.action_data(), actor=acting_user(request))
        except ValidationFailed as failed:
            _copy_errors(form, failed, {"kind": "kind", "due_at": "due_date"})
        else:
            messages.success(request, _("%(kind)s logged.") % {"kind": activity.get_kind_display()})
            return redirect("crm:contact", contact_id=contact.pk)
    return _render_contact(request, contact, activity_form=form, status=400)


def _copy_errors(form: Any, failed: ValidationFailed, fields: dict[str, str]) -> None:
    """Put an action's per-field messages on the form fields they belong to."""
    for name, problems in failed.errors.items():
        for problem in problems:
            form.add_error(fields.get(name), problem)


# -- companies ----------------------------------------------------------------------------------


@require_GET
@role_required("crm.view_company")
def company_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:200]
    paginator = Paginator(queries.company_list(search).select_related("owner"), 50)
    page = paginator.get_page(request.GET.get("page"))
    counts = queries.visible_contact_counts(request.user, [c.pk for c in page])
    return render(
        request,
        "crm/company_list.html",
        {
            "page": page,
            "companies": [(company, counts.get(company.pk, 0)) for company in page],
            "search": search,
            "query_prefix": "?" + urlencode({"q": search}) + "&" if search else "?",
        },
    )


@require_GET
@role_required("crm.view_company")
def company_detail(request: HttpRequest, company_id: int) -> HttpResponse:
    company = get_object_or_404(Company.objects.select_related("owner"), pk=company_id)
    contacts = queries.contact_list(request.user, queries.ContactFilter(company_id=company.pk))
    total = queries.count_up_to(contacts, COUNT_CAP)
    return render(
        request,
        "crm/company_detail.html",
        {
            "company": company,
            "contacts": contacts[:200],
            "total": min(total, COUNT_CAP),
            "shown_all": total <= 200,
            "custom_properties": _custom_properties(company),
            "contacts_url": reverse("crm:contacts") + "?" + urlencode({"company": company.pk}),
        },
    )
