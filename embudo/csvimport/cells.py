"""Cell parsers: how a cell's text becomes a field's value (text of a bounded length, an email
address, a domain, one of a set of names, a user), each raising :class:`RowValueError` with
the reason a user can act on."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from embudo.csvimport.mapping import normalize_header
from embudo.errors import EmbudoError


class RowValueError(EmbudoError, ValueError):
    """One cell's value cannot be used; the message says why."""


def text(max_length: int) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise RowValueError(
                _("the value is %(n)s characters long; at most %(max)s fit")
                % {"n": len(raw), "max": max_length}
            )
        return raw

    return parse


# Addresses of this plain shape pass Django's validator too, so only the others need it; it
# costs ten times more, which shows on a file of a million cells.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_EMAIL_MAX_LENGTH = 254  # the longest address (RFC 5321), and Contact.email's column


def parse_email(raw: str) -> str:
    email = raw.lower()
    if len(email) > _EMAIL_MAX_LENGTH:
        raise RowValueError(
            _("the email address is %(n)s characters long; at most %(max)s fit")
            % {"n": len(email), "max": _EMAIL_MAX_LENGTH}
        )
    if _PLAIN_EMAIL.fullmatch(email) is None:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise RowValueError(_("%r is not a valid email address") % raw) from None
    return email


def parse_domain(raw: str) -> str:
    """``https://www.Acme.com/about`` → ``acme.com``."""
    domain = re.sub(r"^[a-z]+://", "", raw.lower()).split("/", 1)[0].removeprefix("www.")
    if not domain or len(domain) > 255 or re.search(r"\s", domain):
        raise RowValueError(_("%r is not a domain name") % raw)
    return domain


def choice_parser(names: Mapping[str, str], what: str) -> Callable[[str], str]:
    """A parser for an enum whose values may be written many ways (``"Marketing Qualified"``)."""

    def parse(raw: str) -> str:
        value = names.get(normalize_header(raw))
        if value is None:
            raise RowValueError(
                _("%(raw)r is not a %(what)s; use one of %(names)s")
                % {"raw": raw, "what": what, "names": ", ".join(dict.fromkeys(names.values()))}
            )
        return value

    return parse


def _active_users() -> dict[str, int]:
    """Active users by lower-cased username and email: how an owner column names them."""
    users: dict[str, int] = {}
    rows = get_user_model().objects.filter(is_active=True).order_by("pk")
    for pk, _username, email in rows.values_list("pk", "username", "email"):
        if email:
            users.setdefault(email.lower(), pk)
    for pk, username, _email in rows.values_list("pk", "username", "email"):
        users[username.lower()] = pk  # a username wins over someone else's email
    return users


def owner_parser() -> Callable[[str], int]:
    users = _active_users()

    def parse(raw: str) -> int:
        pk = users.get(raw.lower())
        if pk is None:
            raise RowValueError(_("no active user has the username or email %r") % raw)
        return pk

    return parse
