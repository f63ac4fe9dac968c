"""The contact page's e-mail subscriptions card: each type's state, the form to change them and
the consent ledger."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from embudo.automation.models import (
    ConsentRecord,
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
)
from embudo.crm.models import Contact

register = template.Library()


@register.inclusion_tag("automation/consent/contact_subscriptions.html", takes_context=True)
def contact_subscriptions(context: Any, contact: Contact) -> dict[str, Any]:
    user = context["request"].user
    states = dict(
        Subscription.objects.filter(contact=contact).values_list("subscription_type_id", "status")
    )
    labels: dict[str, str] = {
        SubscriptionStatus.SUBSCRIBED: _("subscribed"),
        SubscriptionStatus.PENDING: _("waiting for confirmation"),
        SubscriptionStatus.UNSUBSCRIBED: _("unsubscribed"),
    }
    rows = []
    for subscription_type in SubscriptionType.objects.filter(active=True):
        state = states.get(subscription_type.pk)
        on = state in (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING) or (
            state is None and not subscription_type.opt_in_required
        )
        label = (
            labels.get(state, "")
            if state
            else (
                _("gets it unless they opt out")
                if not subscription_type.opt_in_required
                else _("not subscribed")
            )
        )
        rows.append({"type": subscription_type, "on": on, "label": label})
    return {
        "contact": contact,
        "rows": rows,
        "ledger": ConsentRecord.objects.filter(contact=contact)
        .select_related("subscription_type", "actor")
        .order_by("-at", "-id")[:50],
        "suppression": Suppression.objects.filter(email=contact.email).first()
        if contact.email
        else None,
        "can_change": user.has_perm("automation.change_subscription"),
        "csrf_token": context.get("csrf_token"),
    }
