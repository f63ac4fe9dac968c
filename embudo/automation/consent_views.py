"""Consent pages: what a contact opens from a message (one-click unsubscribe, the preference page,
the double opt-in confirmation), in the contact's language and signed so nobody else can; and
what users open (subscription types, the suppression list, a contact's subscriptions).

Thin views: check the link or the role, call one action or query, render.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.automation import consent, links
from embudo.automation.models import (
    ConsentSource,
    Delivery,
    FormSubscription,
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
    SuppressionReason,
)
from embudo.crm import queries as crm_queries
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from embudo.tracking.models import Form
from embudo.web.access import acting_user, role_required

SUPPRESSIONS_PAGE = 50


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _language(contact: Contact | None) -> str:
    return (contact.language if contact is not None else None) or settings.LANGUAGE_CODE


def _in_language(contact: Contact | None, render_page: Callable[[], HttpResponse]) -> HttpResponse:
    with translation.override(_language(contact)):
        response = render_page()
        response["Content-Language"] = _language(contact)
        return response


def _bad_link(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "automation/consent/public_message.html",
        {
            "title": _("This link does not work"),
            "message": _(
                "The link is incomplete, was changed, or has expired. Open it again from the "
                "e-mail you received."
            ),
        },
        status=404,
    )


# -- what a contact opens from a message ---------------------------------------------------------


@csrf_exempt  # Mail programs post the one-click unsubscribe with no session: the link is signed.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, delivery: int, signature: str) -> HttpResponse:
    """RFC 8058: a POST of ``List-Unsubscribe=One-Click`` unsubscribes at once with no page; a
    GET (someone who clicked the link) asks to confirm, in the contact's language."""
    try:
        links.check_unsubscribe(delivery, signature)
    except links.BadLink:
        return _bad_link(request)
    row = (
        Delivery.objects.select_related("contact", "version__template__subscription_type")
        .filter(pk=delivery)
        .first()
    )
    if row is None:
        return _bad_link(request)
    contact = row.contact
    subscription_type = row.version.template.subscription_type
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        everything = request.POST.get("scope") == "all"
        _unsubscribe_delivery(
            row,
            None if everything else subscription_type,
            source=ConsentSource.ONE_CLICK if one_click else ConsentSource.PREFERENCES,
            ip=_ip(request),
        )
        if one_click:
            return HttpResponse(status=200, content_type="text/plain")
        return _in_language(
            contact,
            lambda: render(
                request,
                "automation/consent/unsubscribed.html",
                {
                    "everything": everything,
                    "type_name": consent.type_name(subscription_type),
                    "preferences": _preferences_link(contact),
                },
            ),
        )
    return _in_language(
        contact,
        lambda: render(
            request,
            "automation/consent/unsubscribe.html",
            {
                "email": row.email,
                "type_name": consent.type_name(subscription_type),
                "preferences": _preferences_link(contact),
            },
        ),
    )


def _unsubscribe_delivery(
    delivery: Delivery, subscription_type: SubscriptionType | None, *, source: str, ip: str | None
) -> None:
    if delivery.contact is not None:
        consent.unsubscribe(
            delivery.contact, subscription_type, source=source, ip=ip, delivery=delivery
        )
        return
    # The contact was erased since: the address still must never get this again.
    Delivery.objects.filter(pk=delivery.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now()
    )
    consent.suppress(delivery.email, SuppressionReason.UNSUBSCRIBED)


def _preferences_link(contact: Contact | None) -> str:
    return links.preferences_path(contact.pk) if contact is not None else ""


@csrf_exempt  # Reached from the contact's mailbox, with no session: the link is signed.
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, contact: int, signature: str) -> HttpResponse:
    try:
        links.check_preferences(contact, signature)
    except links.BadLink:
        return _bad_link(request)
    person = Contact.objects.filter(pk=contact).first()
    if person is None:
        return _bad_link(request)
    types = list(SubscriptionType.objects.filter(active=True))
    saved, problem = False, ""
    if request.method == "POST":
        try:
            _save_preferences(request, person, types)
        except (consent.ConsentError, ValidationFailed) as error:
            with translation.override(_language(person)):
                problem = str(error)
        else:
            saved = True
    states = dict(
        Subscription.objects.filter(contact=person).values_list("subscription_type_id", "status")
    )
    everything_off = bool(
        person.email
        and Suppression.objects.filter(
            email=person.email.lower(), reason=SuppressionReason.UNSUBSCRIBED
        ).exists()
    )

    def page() -> HttpResponse:
        rows = [
            {
                "type": t,
                "name": consent.type_name(t),
                "description": consent.type_description(t),
                "on": not everything_off
                and (
                    states.get(t.pk) == SubscriptionStatus.SUBSCRIBED
                    or (states.get(t.pk) is None and not t.opt_in_required)
                ),
                "pending": states.get(t.pk) == SubscriptionStatus.PENDING,
            }
            for t in types
        ]
        return render(
            request,
            "automation/consent/preferences.html",
            {
                "contact": person,
                "rows": rows,
                "saved": saved,
                "problem": problem,
                "everything_off": everything_off,
                "action": request.path,
            },
        )

    return _in_language(person, page)


def _save_preferences(request: HttpRequest, person: Contact, types: list[SubscriptionType]) -> None:
    """The page's choices, all or nothing."""
    with transaction.atomic():
        if request.POST.get("action") == "unsubscribe_all":
            consent.unsubscribe(person, None, source=ConsentSource.PREFERENCES, ip=_ip(request))
            return
        chosen = set(request.POST.getlist("subscription_type"))
        wanted = {t.pk: str(t.pk) in chosen for t in types}
        if any(wanted.values()):
            consent.resubscribe(person, source=ConsentSource.PREFERENCES, ip=_ip(request))
        consent.set_subscriptions(person, wanted, source=ConsentSource.PREFERENCES, ip=_ip(request))


@require_GET
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        confirmation = links.read_confirmation(token)
    except links.BadLink:
        return _bad_link(request)
    person = Contact.objects.filter(pk=confirmation.contact_id).first()

    def page() -> HttpResponse:
        try:
            subscription = consent.confirm(token, ip=_ip(request))
        except consent.ConsentError as error:
            return render(
                request,
                "automation/consent/public_message.html",
                {"title": _("Nothing to confirm"), "message": str(error)},
                status=409,
            )
        return render(
            request,
            "automation/consent/public_message.html",
            {
                "title": _("Subscription confirmed"),
                "message": _("Thank you: you will receive %(name)s.")
                % {"name": consent.type_name(subscription.subscription_type)},
                "preferences": _preferences_link(subscription.contact),
            },
        )

    return _in_language(person, page)


# -- subscription types (settings) ---------------------------------------------------------------


def _type_data(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: request.POST.get(name, "")
        for name in ("name", "name_es", "description", "description_es")
    }
    data["opt_in_required"] = request.POST.get("opt_in_required") == "on"
    data["double_opt_in"] = request.POST.get("double_opt_in") == "on"
    if request.POST.get("key"):
        data["key"] = request.POST["key"]
    return data


@require_http_methods(["GET", "POST"])
@role_required("automation.view_subscriptiontype")
def subscription_types(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if not request.user.has_perm("automation.add_subscriptiontype"):
            raise PermissionDenied(_("Your role does not allow this."))
        try:
            created = consent.create_subscription_type(
                _type_data(request), actor=acting_user(request)
            )
        except ValidationFailed as failed:
            errors = failed.errors
        else:
            messages.success(
                request, _("Subscription type “%(name)s” created.") % {"name": created}
            )
            return redirect("automation:subscription_types")
    counts = _subscriber_counts()
    return render(
        request,
        "automation/consent/subscription_types.html",
        {
            "types": SubscriptionType.objects.all().order_by("-active", "name"),
            "counts": counts,
            "errors": errors,
            "values": request.POST if errors else {"opt_in_required": "on"},
            "can_change": request.user.has_perm("automation.change_subscriptiontype"),
        },
        status=422 if errors else 200,
    )


def _subscriber_counts() -> dict[int, int]:
    return dict(
        Subscription.objects.filter(status=SubscriptionStatus.SUBSCRIBED)
        .values("subscription_type_id")
        .annotate(n=Count("id"))
        .values_list("subscription_type_id", "n")
    )


@require_http_methods(["GET", "POST"])
@role_required("automation.change_subscriptiontype")
def subscription_type_edit(request: HttpRequest, type_id: int) -> HttpResponse:
    subscription_type = get_object_or_404(SubscriptionType, pk=type_id)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if "archive" in request.POST:
                consent.archive_subscription_type(
                    subscription_type,
                    archived=request.POST["archive"] == "1",
                    actor=acting_user(request),
                )
                messages.success(
                    request,
                    (
                        _("“%(name)s” archived: nothing more is sent under it.")
                        if request.POST["archive"] == "1"
                        else _("“%(name)s” is offered again.")
                    )
                    % {"name": subscription_type},
                )
            else:
                with transaction.atomic():
                    consent.update_subscription_type(
                        subscription_type, _type_data(request), actor=acting_user(request)
                    )
                    consent.set_type_forms(
                        subscription_type,
                        [
                            int(v)
                            for v in request.POST.getlist("forms")
                            if v.isascii() and v.isdigit()
                        ],
                        actor=acting_user(request),
                    )
                messages.success(request, _("Subscription type saved."))
        except ValidationFailed as failed:
            errors = failed.errors
        else:
            return redirect("automation:subscription_types")
    return render(
        request,
        "automation/consent/subscription_type_edit.html",
        {
            "type": subscription_type,
            "errors": errors,
            "values": request.POST if errors else None,
            "forms": Form.objects.filter(is_active=True).order_by("name"),
            "chosen_forms": set(
                FormSubscription.objects.filter(subscription_type=subscription_type).values_list(
                    "form_id", flat=True
                )
            ),
        },
        status=422 if errors else 200,
    )


# -- the suppression list ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required("automation.view_suppression")
def suppressions(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if not request.user.has_perm("automation.add_suppression"):
            raise PermissionDenied(_("Your role does not allow this."))
        try:
            row, created = consent.suppress(
                request.POST.get("email", ""),
                SuppressionReason.MANUAL,
                detail=request.POST.get("detail", ""),
                actor=acting_user(request),
            )
        except ValidationFailed as failed:
            errors = failed.errors
        else:
            if created:
                messages.success(
                    request, _("%(email)s will not be mailed again.") % {"email": row.email}
                )
            else:
                messages.info(
                    request, _("%(email)s was already suppressed.") % {"email": row.email}
                )
            return redirect("automation:suppressions")
    search = request.GET.get("q", "").strip()
    reason = request.GET.get("reason", "")
    rows = Suppression.objects.order_by("-created_at", "-id")
    if "\x00" in search:  # no stored address or detail holds a NUL byte
        rows = rows.none()
    elif search:
        rows = rows.filter(Q(email__icontains=search) | Q(detail__icontains=search))
    if reason in SuppressionReason.values:
        rows = rows.filter(reason=reason)
    page = Paginator(rows, SUPPRESSIONS_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "automation/consent/suppressions.html",
        {
            "page": page,
            "search": search,
            "reason": reason,
            "reasons": SuppressionReason.choices,
            "errors": errors,
            "values": request.POST,
            "can_add": request.user.has_perm("automation.add_suppression"),
            "can_remove": request.user.has_perm("automation.delete_suppression"),
        },
        status=422 if errors else 200,
    )


@require_http_methods(["GET", "POST"])
@role_required("automation.delete_suppression")
def suppression_remove(request: HttpRequest, suppression_id: int) -> HttpResponse:
    """Ask first (GET), then take the address off the list (POST)."""
    row = get_object_or_404(Suppression, pk=suppression_id)
    if request.method == "POST":
        try:
            consent.unsuppress(row.email, actor=acting_user(request))
        except consent.ConsentError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("%(email)s may be mailed again.") % {"email": row.email})
        return redirect("automation:suppressions")
    return render(request, "automation/consent/suppression_remove.html", {"row": row})


# -- a contact's subscriptions ---------------------------------------------------------------------


@require_POST
@role_required("automation.change_subscription")
def contact_subscriptions(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(crm_queries.visible_contacts(request.user), pk=contact_id)
    chosen = set(request.POST.getlist("subscription_type"))
    types = SubscriptionType.objects.filter(active=True)
    wanted = {t.pk: str(t.pk) in chosen for t in types}
    target = reverse("crm:contact", args=[contact.pk]) + "#subscriptions"
    try:
        changed = consent.set_subscriptions(
            contact,
            wanted,
            source=ConsentSource.MANUAL,
            actor=acting_user(request),
            text=request.POST.get("note", "")[:500],
            ip=_ip(request),
        )
    except (ValidationFailed, consent.ConsentError) as error:
        messages.error(request, str(error))
        return redirect(target)
    if changed:
        messages.success(
            request, _("Subscriptions changed: %(names)s.") % {"names": ", ".join(changed)}
        )
    else:
        messages.info(request, _("No subscription changed."))
    return redirect(target)
