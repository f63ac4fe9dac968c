"""The links a message carries back to Embudo, signed so nobody can forge one: the open pixel,
tracked clicks, one-click unsubscribe, the preference page and the double opt-in confirmation.

Each link names ids and a signature over them (Django's signing, keyed by the site's secret and
a salt per purpose), nothing else: a click link points at the n-th link of the version that was
sent, so it can only lead where the message led (never an open redirect), and stays short.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from embudo import caches

# One salt per purpose: a signature made for one kind of link is worthless for another.
_OPEN = signing.Signer(salt="embudo.email.open")
_CLICK = signing.Signer(salt="embudo.email.click")
_UNSUBSCRIBE = signing.Signer(salt="embudo.email.unsubscribe")
_PREFERENCES = signing.Signer(salt="embudo.email.preferences")
_CONFIRM = signing.TimestampSigner(salt="embudo.email.confirm")
_RETURN_PATH = signing.Signer(salt="embudo.email.return-path")

#: How long a double opt-in confirmation link works.
CONFIRM_MAX_AGE_DAYS = 14


class BadLink(Exception):
    """A link whose signature does not match what it names (forged, mangled or expired)."""


_MACS: dict[tuple[str, str], Any] = {}
caches.register("email link keys", _MACS.clear)


def _signature(signer: signing.Signer, value: str) -> str:
    """What ``signer.signature(value)`` gives (so Django's ``unsign`` checks it), with the
    salted key derived once per process rather than per link: a batch signs thousands."""
    salt, secret = str(signer.salt), str(signer.key)
    mac = _MACS.get((salt, secret))
    if mac is None:
        key = hashlib.sha256(f"{salt}signer{secret}".encode()).digest()
        mac = _MACS[(salt, secret)] = hmac.new(key, digestmod=hashlib.sha256)
    one = mac.copy()
    one.update(value.encode())
    return signing.b64_encode(one.digest()).decode()


def _check(signer: signing.Signer, value: str, signature: str) -> None:
    try:
        signer.unsign(f"{value}{signer.sep}{signature}")
    except signing.BadSignature:
        raise BadLink(f"the link's signature does not match {value!r}") from None


# Each kind of link's path as a format string, made by reversing its URL once: a message carries
# a dozen links and a batch thousands of messages, and reverse() costs tens of microseconds.
_FORMATS: dict[str, str] = {}
caches.register("email link formats", _FORMATS.clear)


def _path(name: str, kwargs: dict[str, int | str]) -> str:
    found = _FORMATS.get(name)
    if found is None:
        sentinels = {
            key: (987_654_320 + n if isinstance(value, int) else f"zzembudo{n}zz")
            for n, (key, value) in enumerate(kwargs.items())
        }
        found = reverse(name, kwargs=sentinels).replace("{", "{{").replace("}", "}}")
        for key, sentinel in sentinels.items():
            found = found.replace(str(sentinel), "{" + key + "}")
        _FORMATS[name] = found
    return found.format(**kwargs)


def open_path(delivery_id: int) -> str:
    return _path(
        "automation:open",
        {"delivery": delivery_id, "signature": _signature(_OPEN, str(delivery_id))},
    )


def check_open(delivery_id: int, signature: str) -> None:
    _check(_OPEN, str(delivery_id), signature)


def click_path(delivery_id: int, link: int) -> str:
    """The tracked form of the ``link``-th link (0-based) of the version the delivery sent."""
    value = f"{delivery_id}.{link}"
    return _path(
        "automation:click",
        {"delivery": delivery_id, "link": link, "signature": _signature(_CLICK, value)},
    )


def check_click(delivery_id: int, link: int, signature: str) -> None:
    _check(_CLICK, f"{delivery_id}.{link}", signature)


def unsubscribe_path(delivery_id: int) -> str:
    signature = _signature(_UNSUBSCRIBE, str(delivery_id))
    return _path("automation:unsubscribe", {"delivery": delivery_id, "signature": signature})


def check_unsubscribe(delivery_id: int, signature: str) -> None:
    _check(_UNSUBSCRIBE, str(delivery_id), signature)


def preferences_path(contact_id: int) -> str:
    signature = _signature(_PREFERENCES, str(contact_id))
    return _path("automation:preferences", {"contact": contact_id, "signature": signature})


def check_preferences(contact_id: int, signature: str) -> None:
    _check(_PREFERENCES, str(contact_id), signature)


@dataclass(frozen=True)
class Confirmation:
    contact_id: int
    subscription_type_id: int


def confirm_path(contact_id: int, subscription_type_id: int) -> str:
    token = _CONFIRM.sign(f"{contact_id}.{subscription_type_id}")
    return reverse("automation:confirm", kwargs={"token": token})


def read_confirmation(token: str) -> Confirmation:
    """What a double opt-in link confirms; raises :class:`BadLink` if forged or expired."""
    try:
        value = _CONFIRM.unsign(token, max_age=CONFIRM_MAX_AGE_DAYS * 86_400)
        contact, subscription_type = (int(part) for part in value.split("."))
    except (signing.BadSignature, ValueError):
        raise BadLink("the confirmation link is not valid or has expired") from None
    return Confirmation(contact, subscription_type)


def absolute(path: str) -> str:
    """A path of Embudo's as the link a contact's mail program opens (``EMBUDO_PUBLIC_URL``)."""
    return f"{settings.EMBUDO_PUBLIC_URL}{path}"


def return_path(delivery_id: int) -> str:
    """The envelope sender of one delivery (VERP): a bounce that comes back to it names the
    delivery it is about, and the signature keeps anyone from bouncing someone else's address.
    Signatures are short and case-insensitive, as mail servers may change an address's case."""
    signature = _signature(_RETURN_PATH, str(delivery_id))[:12].lower()
    return f"bounces+{delivery_id}-{signature}@{settings.EMBUDO_BOUNCE_DOMAIN}"


def read_return_path(address: str) -> int:
    """The delivery a return path names; raises :class:`BadLink` if it is not one of ours."""
    local = address.strip().strip("<>").rsplit("@", 1)[0].lower()
    prefix, _, tag = local.partition("+")
    delivery, _, signature = tag.partition("-")
    if prefix != "bounces" or not delivery.isdigit() or not signature:
        raise BadLink(f"{address!r} is not an Embudo return path")
    expected = _signature(_RETURN_PATH, delivery)[:12].lower()
    if not constant_time_compare(expected, signature):
        raise BadLink(f"the return path {address!r} is not signed by this Embudo")
    return int(delivery)
