"""Consent: every change to what a contact agreed to receive, each written to the consent ledger
with its source, the words the contact saw, the time and the IP address where known; the
subscription types marketing offers; the suppression list.

- :func:`subscribe` — opt a contact in (pending until confirmed when the type asks for a double
  opt-in and the address is not proven yet: a form or the API);
- :func:`confirm` — the contact followed the confirmation link;
- :func:`unsubscribe` — from one type, or from all e-mail (which suppresses the address);
- :func:`resubscribe` — the contact takes back an unsubscribe from all;
- :func:`set_subscriptions` — the contact page's and the preference page's many changes at once;
- :func:`suppress` / :func:`unsuppress` — the suppression list.

A change that changes nothing (a second unsubscribe, a confirmation followed twice) writes
nothing and answers as the first did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email, validate_ipv46_address
from django.db import transaction
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.automation import links
from embudo.automation.models import (
    Brand,
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Delivery,
    FormSubscription,
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
    SuppressionReason,
)
from embudo.crm.models import Contact
from embudo.errors import EmbudoError, ValidationFailed

#: Sources whose address nobody has proven yet: a double opt-in type holds them pending.
UNPROVEN_SOURCES = frozenset({ConsentSource.FORM, ConsentSource.API})


class ConsentError(EmbudoError):
    """A consent change that cannot be made (the message says why)."""


# -- the ledger ---------------------------------------------------------------------------------


def _record(
    contact: Contact,
    subscription_type: SubscriptionType | None,
    action: str,
    source: str,
    *,
    actor: Actor = None,
    text: str = "",
    ip: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> ConsentRecord:
    return ConsentRecord.objects.create(
        contact=contact,
        email=contact.email or "",
        subscription_type=subscription_type,
        action=action,
        source=source,
        text=text[:5000],
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        ip_address=ip or None,
        detail=dict(detail or {}),
    )


def clean_evidence(text: str, ip: str | None) -> tuple[str, str | None]:
    """The consent text and IP address a caller gives, checked before anything is written: no
    NUL bytes (no database stores them) and a real IPv4 or IPv6 address."""
    errors: dict[str, list[str]] = {}
    if "\x00" in (text or ""):
        errors["text"] = ["the text holds a NUL byte"]
    if ip:
        try:
            validate_ipv46_address(ip)
        except ValidationError:
            errors["ip_address"] = [f"{ip!r} is not an IPv4 or IPv6 address"]
    if errors:
        raise ValidationFailed(errors)
    return text or "", ip or None


def _check_source(source: str) -> None:
    if source not in ConsentSource.values:
        raise ValidationFailed.one(
            "source", f"{source!r} is not a consent source ({', '.join(ConsentSource.values)})"
        )


# -- subscribing --------------------------------------------------------------------------------


def subscribe(
    contact: Contact,
    subscription_type: SubscriptionType,
    *,
    source: str,
    actor: Actor = None,
    text: str = "",
    ip: str | None = None,
) -> Subscription:
    """Opt ``contact`` in to ``subscription_type``.

    A double opt-in type keeps a form's or the API's opt-in pending and mails the contact a
    confirmation link; a user's change, an import (consent given elsewhere) or the preference
    page (reached from the contact's own mailbox) subscribes at once. Subscribing lifts an
    earlier unsubscribe from all: the contact asked for this mail again.
    """
    _check_source(source)
    if not subscription_type.active:
        raise ConsentError(
            _("The subscription type “%(name)s” is archived.") % {"name": subscription_type}
        )
    if not contact.email:
        raise ConsentError(_("The contact has no e-mail address to subscribe."))
    pending = subscription_type.double_opt_in and source in UNPROVEN_SOURCES
    with transaction.atomic():
        current = (
            Subscription.objects.select_for_update(of=("self",))
            .filter(contact=contact, subscription_type=subscription_type)
            .first()
        )
        if current is not None and (
            current.status == SubscriptionStatus.SUBSCRIBED
            or (pending and current.status == SubscriptionStatus.PENDING)
        ):
            return current
        status = SubscriptionStatus.PENDING if pending else SubscriptionStatus.SUBSCRIBED
        subscription = _set_status(contact, subscription_type, status, current)
        _record(
            contact,
            subscription_type,
            ConsentAction.REQUEST if pending else ConsentAction.SUBSCRIBE,
            source,
            actor=actor,
            text=text,
            ip=ip,
        )
        if not pending:
            _lift_unsubscribe_all(contact, source=source, actor=actor, ip=ip)
        if pending:
            contact_id, type_id = contact.pk, subscription_type.pk
            transaction.on_commit(lambda: send_confirmation(contact_id, type_id))
    return subscription


def _set_status(
    contact: Contact,
    subscription_type: SubscriptionType,
    status: str,
    current: Subscription | None,
) -> Subscription:
    now = timezone.now()
    if current is None:
        return Subscription.objects.create(
            contact=contact, subscription_type=subscription_type, status=status, changed_at=now
        )
    current.status = status
    current.changed_at = now
    current.save(update_fields=["status", "changed_at"])
    return current


def send_confirmation(contact_id: int, subscription_type_id: int) -> bool:
    """Mail a pending subscriber the link that confirms it, in the contact's language. False
    when there is nothing to confirm any more (confirmed, withdrawn, address gone)."""
    subscription = (
        Subscription.objects.select_related("contact", "subscription_type")
        .filter(contact_id=contact_id, subscription_type_id=subscription_type_id)
        .first()
    )
    if subscription is None or subscription.status != SubscriptionStatus.PENDING:
        return False
    contact = subscription.contact
    if not contact.email:
        return False
    brand = Brand.objects.filter(pk=1).first()
    sender = settings.DEFAULT_FROM_EMAIL
    if brand is not None and brand.from_email:
        sender = f"{brand.from_name} <{brand.from_email}>" if brand.from_name else brand.from_email
    link = links.absolute(links.confirm_path(contact_id, subscription_type_id))
    with translation.override(contact.language or settings.LANGUAGE_CODE):
        name = type_name(subscription.subscription_type)
        subject = _("Please confirm your subscription to %(name)s") % {"name": name}
        body = _(
            "Hello,\n\nSomeone, hopefully you, asked to receive %(name)s at this address. "
            "To confirm, open this link within %(days)d days:\n\n%(link)s\n\n"
            "If it was not you, ignore this message: you will not be subscribed."
        ) % {"name": name, "days": links.CONFIRM_MAX_AGE_DAYS, "link": link}
    EmailMessage(subject, body, sender, [contact.email]).send()
    return True


def type_name(subscription_type: SubscriptionType) -> str:
    """The type's name in the active language."""
    return subscription_type.localized_name


def type_description(subscription_type: SubscriptionType) -> str:
    return subscription_type.localized_description


def confirm(token: str, *, ip: str | None = None) -> Subscription:
    """Confirm the double opt-in a link names. Raises :class:`links.BadLink` for a forged or
    expired link and :class:`ConsentError` when there is nothing left to confirm."""
    confirmation = links.read_confirmation(token)
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("contact", "subscription_type")
            .filter(
                contact_id=confirmation.contact_id,
                subscription_type_id=confirmation.subscription_type_id,
            )
            .first()
        )
        if subscription is None:
            raise ConsentError(_("There is no subscription waiting for this confirmation."))
        if subscription.status == SubscriptionStatus.SUBSCRIBED:
            return subscription
        if subscription.status != SubscriptionStatus.PENDING:
            raise ConsentError(
                _("This subscription was cancelled after it was asked for; subscribe again.")
            )
        subscription = _set_status(
            subscription.contact,
            subscription.subscription_type,
            SubscriptionStatus.SUBSCRIBED,
            subscription,
        )
        _record(
            subscription.contact,
            subscription.subscription_type,
            ConsentAction.CONFIRM,
            ConsentSource.DOUBLE_OPT_IN,
            ip=ip,
            text=_("Followed the confirmation link."),
        )
        _lift_unsubscribe_all(subscription.contact, source=ConsentSource.DOUBLE_OPT_IN, ip=ip)
    return subscription


# -- unsubscribing ------------------------------------------------------------------------------


def unsubscribe(
    contact: Contact,
    subscription_type: SubscriptionType | None,
    *,
    source: str,
    actor: Actor = None,
    text: str = "",
    ip: str | None = None,
    delivery: Delivery | None = None,
) -> bool:
    """Take ``contact`` off ``subscription_type``, or off every e-mail when it is None (which
    also suppresses the address, so no type made later reaches it). The delivery the contact
    unsubscribed from, if any, is marked. False when it was already so (nothing written)."""
    _check_source(source)
    with transaction.atomic():
        if delivery is not None and delivery.unsubscribed_at is None:
            Delivery.objects.filter(pk=delivery.pk, unsubscribed_at__isnull=True).update(
                unsubscribed_at=timezone.now()
            )
        if subscription_type is None:
            changed = _unsubscribe_all(contact)
        else:
            current = (
                Subscription.objects.select_for_update(of=("self",))
                .filter(contact=contact, subscription_type=subscription_type)
                .first()
            )
            changed = current is None or current.status != SubscriptionStatus.UNSUBSCRIBED
            if changed:
                _set_status(contact, subscription_type, SubscriptionStatus.UNSUBSCRIBED, current)
        if not changed:
            return False
        detail = {"delivery": delivery.pk} if delivery is not None else {}
        _record(
            contact,
            subscription_type,
            ConsentAction.UNSUBSCRIBE,
            source,
            actor=actor,
            text=text,
            ip=ip,
            detail=detail,
        )
    return True


def _unsubscribe_all(contact: Contact) -> bool:
    """Every type unsubscribed (rows made for the types the contact never chose, so an opt-out
    type stops too) and the address suppressed. True if anything changed."""
    now = timezone.now()
    changed = bool(
        Subscription.objects.filter(contact=contact)
        .exclude(status=SubscriptionStatus.UNSUBSCRIBED)
        .update(status=SubscriptionStatus.UNSUBSCRIBED, changed_at=now)
    )
    changed = _fill_unsubscribed(contact, now) or changed
    if contact.email:
        _row, created = Suppression.objects.get_or_create(
            email=contact.email.lower(),
            defaults={"reason": SuppressionReason.UNSUBSCRIBED, "created_at": now},
        )
        changed = changed or created
    # Already suppressed for another reason (a complaint): still the contact's own choice,
    # recorded once.
    last = (
        ConsentRecord.objects.filter(contact=contact, subscription_type__isnull=True)
        .order_by("-at", "-id")
        .values_list("action", flat=True)
        .first()
    )
    return changed or last != ConsentAction.UNSUBSCRIBE


def _fill_unsubscribed(contact: Contact, now: Any) -> bool:
    chosen = Subscription.objects.filter(contact=contact).values("subscription_type_id")
    return bool(
        Subscription.objects.bulk_create(
            [
                Subscription(
                    contact=contact,
                    subscription_type=subscription_type,
                    status=SubscriptionStatus.UNSUBSCRIBED,
                    changed_at=now,
                )
                for subscription_type in SubscriptionType.objects.exclude(pk__in=chosen)
            ]
        )
    )


def resubscribe(
    contact: Contact, *, source: str, actor: Actor = None, ip: str | None = None
) -> bool:
    """Take back an unsubscribe from all: the address may be mailed again for the types the
    contact is subscribed to (each type it left stays left). False if it was not unsubscribed
    from all. Bounces and complaints stay suppressed: only a user lifts those."""
    _check_source(source)
    with transaction.atomic():
        return _lift_unsubscribe_all(contact, source=source, actor=actor, ip=ip)


def _lift_unsubscribe_all(
    contact: Contact, *, source: str, actor: Actor = None, ip: str | None = None
) -> bool:
    if not contact.email:
        return False
    deleted, _count = Suppression.objects.filter(
        email=contact.email.lower(), reason=SuppressionReason.UNSUBSCRIBED
    ).delete()
    if not deleted:
        return False
    _record(
        contact,
        None,
        ConsentAction.SUBSCRIBE,
        source,
        actor=actor,
        ip=ip,
        text=_("Takes e-mail again (an earlier unsubscribe from all is lifted)."),
    )
    return True


def set_subscriptions(
    contact: Contact,
    wanted: Mapping[int, bool],
    *,
    source: str,
    actor: Actor = None,
    ip: str | None = None,
    text: str = "",
) -> list[str]:
    """Apply many choices at once (subscription type id → subscribed?), each change its own
    ledger line; answers the names of the types that changed. An unknown or archived type id
    is refused before anything is written."""
    _check_source(source)
    types = SubscriptionType.objects.in_bulk(list(wanted))
    unknown = [str(pk) for pk in wanted if pk not in types or not types[pk].active]
    if unknown:
        raise ValidationFailed.one(
            "subscription_type", f"no active subscription type with id {', '.join(unknown)}"
        )
    current = dict(
        Subscription.objects.filter(contact=contact).values_list("subscription_type_id", "status")
    )
    changed: list[str] = []
    with transaction.atomic():
        for pk, subscribed in wanted.items():
            status = current.get(pk)
            subscription_type = types[pk]
            if subscribed and status not in (
                SubscriptionStatus.SUBSCRIBED,
                SubscriptionStatus.PENDING,
            ):
                subscribe(contact, subscription_type, source=source, actor=actor, ip=ip, text=text)
                changed.append(subscription_type.name)
            elif (
                not subscribed
                and status != SubscriptionStatus.UNSUBSCRIBED
                and (status is not None or not subscription_type.opt_in_required)
            ):
                unsubscribe(
                    contact, subscription_type, source=source, actor=actor, ip=ip, text=text
                )
                changed.append(subscription_type.name)
    return changed


def subscribe_from_form(
    contact: Contact, form_id: int, consent_text: str, *, ip: str | None = None
) -> None:
    """A form's consent box was ticked: subscribe the contact to the types the form offers,
    recording the words the visitor saw."""
    for link in FormSubscription.objects.filter(
        form_id=form_id, subscription_type__active=True
    ).select_related("subscription_type"):
        subscribe(
            contact, link.subscription_type, source=ConsentSource.FORM, text=consent_text, ip=ip
        )


def set_type_forms(
    subscription_type: SubscriptionType, form_ids: list[int], *, actor: Actor = None
) -> None:
    """The forms whose ticked consent box subscribes to ``subscription_type``."""
    from embudo.tracking.models import Form

    known = set(Form.objects.filter(pk__in=form_ids).values_list("pk", flat=True))
    unknown = sorted(set(form_ids) - known)
    if unknown:
        raise ValidationFailed.one("forms", f"no form with id {', '.join(map(str, unknown))}")
    with transaction.atomic():
        FormSubscription.objects.filter(subscription_type=subscription_type).exclude(
            form_id__in=known
        ).delete()
        have = set(
            FormSubscription.objects.filter(subscription_type=subscription_type).values_list(
                "form_id", flat=True
            )
        )
        FormSubscription.objects.bulk_create(
            [
                FormSubscription(form_id=pk, subscription_type=subscription_type)
                for pk in sorted(known - have)
            ]
        )
        record_audit(
            "subscription_type.forms",
            "subscriptiontype",
            subscription_type.pk,
            actor=actor,
            changes={"forms": sorted(known)},
        )


def before_merge(primary: Contact, duplicate: Contact) -> None:
    """Two contacts becoming one keep one state per type: the latest choice of the two (a
    subscription and a later unsubscribe make an unsubscribe). Their ledgers both move over."""
    mine = {s.subscription_type_id: s for s in Subscription.objects.filter(contact=primary)}
    for theirs in Subscription.objects.filter(contact=duplicate, subscription_type_id__in=mine):
        kept = mine[theirs.subscription_type_id]
        if theirs.changed_at > kept.changed_at:
            kept.status, kept.changed_at = theirs.status, theirs.changed_at
            kept.save(update_fields=["status", "changed_at"])
        theirs.delete()


# -- the suppression list -----------------------------------------------------------------------


def clean_address(email: str) -> str:
    address = (email or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationFailed.one("email", f"{email!r} is not a valid e-mail address") from None
    return address


def suppress(
    email: str, reason: str, *, detail: str = "", actor: Actor = None
) -> tuple[Suppression, bool]:
    """Never mail ``email`` again. Answers the row and whether it is new (an address already
    suppressed keeps its first reason)."""
    address = clean_address(email)
    if "\x00" in detail:
        raise ValidationFailed.one("detail", "the detail holds a NUL byte")
    if reason not in SuppressionReason.values:
        raise ValidationFailed.one(
            "reason", f"{reason!r} is not a reason ({', '.join(SuppressionReason.values)})"
        )
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            email=address, defaults={"reason": reason, "detail": detail[:500]}
        )
        if created:
            record_audit(
                "suppression.add",
                "suppression",
                suppression.pk,
                actor=actor,
                changes={"email": address, "reason": reason},
            )
    return suppression, created


def unsuppress(email: str, *, actor: Actor = None) -> bool:
    """Take ``email`` off the suppression list. An unsubscribe from all is the contact's own
    choice: only the contact takes it back (the preference page), never a user."""
    address = (email or "").strip().lower()
    if "\x00" in address:  # no address on the list holds one
        return False
    with transaction.atomic():
        suppression = (
            Suppression.objects.select_for_update(of=("self",)).filter(email=address).first()
        )
        if suppression is None:
            return False
        if suppression.reason == SuppressionReason.UNSUBSCRIBED:
            raise ConsentError(
                _(
                    "%(email)s unsubscribed from all e-mail: only the contact can take that "
                    "back, from the preference page."
                )
                % {"email": address}
            )
        suppression.delete()
        record_audit(
            "suppression.remove",
            "suppression",
            address,
            actor=actor,
            changes={"email": address, "reason": suppression.reason},
        )
    return True


# -- subscription types -------------------------------------------------------------------------

_TYPE_FIELDS = (
    "name",
    "name_es",
    "description",
    "description_es",
    "opt_in_required",
    "double_opt_in",
)


def _type_values(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in ("name", "name_es", "description", "description_es"):
        if name in data:
            values[name] = str(data[name] or "").strip()
            if "\x00" in values[name]:
                errors[name] = ["the text holds a NUL byte"]
    for name in ("opt_in_required", "double_opt_in"):
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = ["must be true or false"]
            else:
                values[name] = data[name]
    if data.get("key"):
        values["key"] = slugify(str(data["key"]))[:64]
        if not values["key"]:
            errors["key"] = ["use letters, digits and dashes"]
    if (creating and not values.get("name")) or ("name" in values and not values["name"]):
        errors["name"] = ["a subscription type needs a name"]
    for name, limit in (("name", 128), ("name_es", 128), ("description", 500)):
        if len(values.get(name, "")) > limit:
            errors[name] = [f"at most {limit} characters"]
    if len(values.get("description_es", "")) > 500:
        errors["description_es"] = ["at most 500 characters"]
    if errors:
        raise ValidationFailed(errors)
    return values


def create_subscription_type(data: Mapping[str, Any], *, actor: Actor = None) -> SubscriptionType:
    values = _type_values(data, creating=True)
    values.setdefault("key", slugify(values["name"])[:64] or "type")
    if SubscriptionType.objects.filter(key=values["key"]).exists():
        raise ValidationFailed.one("key", f"a subscription type with key {values['key']!r} exists")
    if SubscriptionType.objects.filter(name__iexact=values["name"]).exists():
        raise ValidationFailed.one("name", f"a subscription type named {values['name']!r} exists")
    with transaction.atomic():
        subscription_type = SubscriptionType.objects.create(**values)
        record_audit(
            "subscription_type.create",
            "subscriptiontype",
            subscription_type.pk,
            actor=actor,
            changes={k: v for k, v in values.items() if k in _TYPE_FIELDS},
        )
    return subscription_type


def update_subscription_type(
    subscription_type: SubscriptionType, data: Mapping[str, Any], *, actor: Actor = None
) -> SubscriptionType:
    values = _type_values({k: v for k, v in data.items() if k != "key"}, creating=False)
    name = values.get("name")
    if (
        name
        and SubscriptionType.objects.filter(name__iexact=name)
        .exclude(pk=subscription_type.pk)
        .exists()
    ):
        raise ValidationFailed.one("name", f"a subscription type named {name!r} exists")
    with transaction.atomic():
        for key, value in values.items():
            setattr(subscription_type, key, value)
        subscription_type.save()
        record_audit(
            "subscription_type.update",
            "subscriptiontype",
            subscription_type.pk,
            actor=actor,
            changes=values,
        )
    return subscription_type


def archive_subscription_type(
    subscription_type: SubscriptionType, *, archived: bool = True, actor: Actor = None
) -> SubscriptionType:
    """Stop offering a type (its subscribers and ledger stay; nothing more is sent under it)."""
    with transaction.atomic():
        subscription_type.active = not archived
        subscription_type.save(update_fields=["active"])
        record_audit(
            "subscription_type.archive" if archived else "subscription_type.restore",
            "subscriptiontype",
            subscription_type.pk,
            actor=actor,
        )
    return subscription_type
