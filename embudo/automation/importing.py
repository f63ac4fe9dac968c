"""`embudo import consent FILE`: consent given or withdrawn elsewhere (an old e-mail tool, a
trade-show list), one row per contact and subscription type.

Columns (by header): ``email`` (a known contact), ``subscription_type`` (a type's key),
``status`` (``subscribed`` or ``unsubscribed``), and optionally ``consented_at`` (when; now if
empty), ``text`` (the words the contact agreed to) and ``ip_address``. Each row sets the
contact's state for the type and writes a ledger line with source ``import``; an import is
history the contact already gave, so no double opt-in e-mail goes out. Rows are written in bulk.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo.automation.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
)
from embudo.crm.models import Contact
from embudo.csvimport.cells import RowValueError, parse_email
from embudo.csvimport.mapping import normalize_header
from embudo.csvimport.report import ErrorReport, ImportFileError
from embudo.csvimport.run import Importer, ImportOptions, ImportResult, register_importer
from embudo.csvimport.source import CsvSource
from embudo.deals.importing import parse_deal_datetime

REQUIRED = ("email", "subscription_type", "status")
OPTIONAL = ("consented_at", "text", "ip_address")
_CHUNK = 5_000
_STATUS = {
    "subscribed": SubscriptionStatus.SUBSCRIBED,
    "yes": SubscriptionStatus.SUBSCRIBED,
    "opted in": SubscriptionStatus.SUBSCRIBED,
    "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    "no": SubscriptionStatus.UNSUBSCRIBED,
    "opted out": SubscriptionStatus.UNSUBSCRIBED,
}


def _columns(source: CsvSource, options: ImportOptions) -> dict[str, int]:
    by_name = {normalize_header(h): i for i, h in enumerate(source.header)}
    for column, target in options.mapping.items():
        if normalize_header(column) in by_name:
            by_name[normalize_header(target)] = by_name[normalize_header(column)]
    missing = [name for name in REQUIRED if normalize_header(name) not in by_name]
    if missing:
        raise ImportFileError(
            _("the file has no %(columns)s column; a consent file needs %(required)s")
            % {"columns": ", ".join(missing), "required": ", ".join(REQUIRED)}
        )
    return {
        name: by_name[normalize_header(name)]
        for name in (*REQUIRED, *OPTIONAL)
        if normalize_header(name) in by_name
    }


def run_consent(
    source: CsvSource, options: ImportOptions, result: ImportResult, report: ErrorReport
) -> None:
    columns = _columns(source, options)
    types = dict(SubscriptionType.objects.filter(active=True).values_list("key", "pk"))
    now = timezone.now()
    parsed: list[tuple[int, str, int, str, dt.datetime, str, str | None]] = []
    for record in source.records():
        result.rows += 1

        def cell(name: str, values: list[str] = record.values) -> str:
            index = columns.get(name)
            return values[index].strip() if index is not None and index < len(values) else ""

        try:
            email = parse_email(cell("email"))
        except RowValueError as error:
            report.add(record.line, "email", str(error))
            continue
        key = cell("subscription_type")
        if key not in types:
            report.add(
                record.line,
                "subscription_type",
                _("no active subscription type with key %(key)r") % {"key": key},
            )
            continue
        status = _STATUS.get(cell("status").lower())
        if status is None:
            report.add(
                record.line,
                "status",
                _("%(value)r is not subscribed or unsubscribed") % {"value": cell("status")},
            )
            continue
        at = now
        if cell("consented_at"):
            try:
                value = parse_deal_datetime(cell("consented_at"))
            except (ValueError, RowValueError):
                report.add(
                    record.line,
                    "consented_at",
                    _("%(value)r is not a date") % {"value": cell("consented_at")},
                )
                continue
            at = value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
            if at > now:
                report.add(record.line, "consented_at", _("the date is in the future"))
                continue
        ip = cell("ip_address") or None
        if ip is not None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                report.add(
                    record.line, "ip_address", _("%(value)r is not an IP address") % {"value": ip}
                )
                continue
        parsed.append((record.line, email, types[key], status, at, cell("text")[:5000], ip))
    contacts = _contacts_by_email({row[1] for row in parsed})
    for line, email, *_rest in parsed:
        if email not in contacts:
            report.add(line, "email", _("no contact has the address %(email)s") % {"email": email})
    if len(report) and not options.skip_invalid:
        return
    _write([row for row in parsed if row[1] in contacts], contacts, result)


def _contacts_by_email(emails: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(emails)
    for start in range(0, len(ordered), _CHUNK):
        rows = Contact.objects.filter(email__in=ordered[start : start + _CHUNK])
        found.update((email, pk) for email, pk in rows.values_list("email", "pk") if email)
    return found


def _write(
    rows: list[tuple[int, str, int, str, dt.datetime, str, str | None]],
    contacts: dict[str, int],
    result: ImportResult,
) -> None:
    # The latest row per (contact, type) sets the state; every row is a ledger line.
    latest: dict[tuple[int, int], tuple[str, dt.datetime]] = {}
    ledger: list[ConsentRecord] = []
    for _line, email, type_id, status, at, text, ip in sorted(rows, key=lambda r: r[4]):
        contact_id = contacts[email]
        latest[(contact_id, type_id)] = (status, at)
        ledger.append(
            ConsentRecord(
                contact_id=contact_id,
                email=email,
                subscription_type_id=type_id,
                action=ConsentAction.SUBSCRIBE
                if status == SubscriptionStatus.SUBSCRIBED
                else ConsentAction.UNSUBSCRIBE,
                source=ConsentSource.IMPORT,
                text=text,
                at=at,
                ip_address=ip,
            )
        )
    existing: dict[tuple[int, int], Subscription] = {}
    keys = list(latest)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        for subscription in Subscription.objects.filter(
            contact_id__in={c for c, _t in chunk}, subscription_type_id__in={t for _c, t in chunk}
        ):
            existing[(subscription.contact_id, subscription.subscription_type_id)] = subscription
    changed: list[Subscription] = []
    new: list[Subscription] = []
    for (contact_id, type_id), (status, at) in latest.items():
        current = existing.get((contact_id, type_id))
        if current is None:
            new.append(
                Subscription(
                    contact_id=contact_id,
                    subscription_type_id=type_id,
                    status=status,
                    changed_at=at,
                )
            )
        elif current.status != status and current.changed_at <= at:
            current.status, current.changed_at = status, at
            changed.append(current)
    Subscription.objects.bulk_create(new, batch_size=_CHUNK)
    Subscription.objects.bulk_update(changed, ["status", "changed_at"], batch_size=_CHUNK)
    ConsentRecord.objects.bulk_create(ledger, batch_size=_CHUNK)
    result.created = len(new)
    result.updated = len(changed)
    result.unchanged = len(latest) - len(new) - len(changed)
    result.counts["consent_records"] = len(ledger)


register_importer(
    Importer(
        "consent",
        run_consent,
        gettext_lazy(
            "consent given elsewhere: email, subscription_type (key), status "
            "(subscribed/unsubscribed), consented_at, text, ip_address"
        ),
    )
)
