"""Broadcast sends, and the engine that hands each of their messages to the mail server once.

A send mails one template version to a segment or static list. Starting it freezes the
audience: one :class:`Delivery` per contact, ``queued`` when the consent rules let it be mailed,
``skipped`` with the reason when not. Workers then deliver it in batches.

Exactly once, per delivery, over a real SMTP connection:

1. **claim** it in a committed transaction (``claimed``, the worker's claim token, ``claimed_at``);
   PostgreSQL picks rows with ``FOR UPDATE SKIP LOCKED``, SQLite's write lock (``BEGIN
   IMMEDIATE``) serialises the claims, and the UPDATE is conditional on ``queued`` on both;
2. send ``MAIL FROM``, ``RCPT TO``, ``DATA`` and the whole message **but the final "."**;
3. commit ``sending`` (with the Message-ID);
4. write the terminating ``.`` and read the server's reply;
5. commit ``sent``.

A worker that dies before (3) leaves a message the server never accepted (a DATA without its
"." is discarded when the connection drops), so recovery puts the delivery back in the queue.
A worker that dies after (3) may have had it accepted, so recovery counts it as sent. The one
case that loses a message is a death between the commit of (3) and the write of the ".": one
write of three bytes. Nothing is ever sent twice. ``docs/sending.md`` tells the whole story.

Recovery (:func:`recover`) runs when a worker starts and at the start of every delivery task:
claims held by a process that is gone (same host, its pid no longer running) or older than the
lease are released.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import re
import secrets
import smtplib
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, F, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.automation import bounces, mailability, rendering
from embudo.automation.models import (
    BounceKind,
    Brand,
    Delivery,
    DeliveryState,
    EmailTemplate,
    Send,
    SendState,
)
from embudo.crm.models import Contact
from embudo.db.bulk import insert_rows
from embudo.errors import EmbudoError
from embudo.segments import queries as segment_queries
from embudo.segments.conditions import ConditionError
from embudo.segments.models import Segment

logger = logging.getLogger(__name__)

#: Deliveries one worker claims at a time; a pause or cancel is seen between batches.
CLAIM_BATCH = 50
#: A claim older than this belongs to a worker that is gone (on another host, where its pid
#: cannot be checked); well above the longest batch (50 messages at the SMTP timeout).
LEASE_SECONDS = 30 * 60
#: How long one delivery task runs before handing the send to a fresh task, so a big send
#: shares the workers with other work (SLA timers, notifications).
TASK_SECONDS = 120.0
#: Tasks queued when a send starts or resumes: as many workers as may share it.
MAX_PARALLEL_TASKS = 8
#: Recipients per task queued at start (a small send needs one worker).
RECIPIENTS_PER_TASK = 2000
#: A refused-for-now (4xx) or timed-out delivery is tried again after 1, 2, 4, 8, 16 minutes,
#: then given up as failed.
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 60
#: How long a connection to the mail server may stay silent before it counts as dead.
SMTP_TIMEOUT_SECONDS = 30
#: When other workers still hold claims of a finished-looking send, look again after this long.
RECHECK_SECONDS = 30

#: Crash tests: ``EMBUDO_EMAIL_KILL_AT=step`` or ``step:n`` makes the process ``os._exit`` at the
#: n-th time (1st by default) it reaches that step. Steps: ``claimed``, ``body``, ``sending``,
#: ``dot``, ``replied``.
KILL_AT_VARIABLE = "EMBUDO_EMAIL_KILL_AT"
KILL_STEPS = ("claimed", "body", "sending", "dot", "replied")

_OPEN = (DeliveryState.QUEUED, DeliveryState.CLAIMED, DeliveryState.SENDING)


class SendError(EmbudoError, ValueError):
    """A send that cannot be created, started, paused, resumed or cancelled; ``code`` is stable
    for the API, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


# -- kill points (deterministic crash tests) ----------------------------------------------------


class _KillPoint:
    def __init__(self) -> None:
        raw = os.environ.get(KILL_AT_VARIABLE, "")
        step, _sep, count = raw.partition(":")
        self.step = step if step in KILL_STEPS else ""
        self.remaining = int(count) if count.isdigit() else 1

    def reached(self, step: str) -> None:
        if step != self.step:
            return
        self.remaining -= 1
        if self.remaining <= 0:
            # What kill -9 does: no cleanup, no rollback, no QUIT to the mail server.
            os._exit(70)


_kill = _KillPoint()


def _reset_kill_point() -> None:
    global _kill
    _kill = _KillPoint()


# -- creating and steering a send ---------------------------------------------------------------


def _template(template: EmailTemplate | int | str) -> EmailTemplate:
    if isinstance(template, EmailTemplate):
        return template
    query = EmailTemplate.objects.select_related("current", "subscription_type")
    found = (
        query.filter(pk=template).first()
        if isinstance(template, int) or str(template).isdigit()
        else None
    )
    # No name holds a NUL (PostgreSQL cannot even compare one), so none is looked up.
    if "\x00" not in str(template):
        found = found or query.filter(name=str(template)).first()
    if found is None:
        message = _("There is no e-mail template %(t)s.") % {"t": template}
        raise SendError("unknown_template", message)
    return found


def _segment(segment: Segment | int | str) -> Segment:
    if isinstance(segment, Segment):
        return segment
    found = (
        Segment.objects.filter(pk=segment).first()
        if isinstance(segment, int) or str(segment).isdigit()
        else None
    )
    if "\x00" not in str(segment):  # no name holds a NUL (PostgreSQL cannot compare one)
        found = found or segment_queries.segment_by_name(str(segment))
    if found is None:
        raise SendError("unknown_segment", _("There is no segment or list %(s)s.") % {"s": segment})
    return found


@transaction.atomic
def create_send(
    *,
    template: EmailTemplate | int | str,
    segment: Segment | int | str,
    name: str = "",
    actor: Actor,
) -> Send:
    """A draft send of ``template`` to ``segment`` (a dynamic segment or a static list)."""
    chosen = _template(template)
    audience = _segment(segment)
    if chosen.archived:
        raise SendError("archived_template", _("The template %(t)s is archived.") % {"t": chosen})
    name = (name or "").strip() or f"{chosen.name} → {audience.name}"
    if len(name) > 255:
        raise SendError("bad_name", _("A send's name is at most 255 characters."))
    if "\x00" in name:
        raise SendError("bad_name", _("A send's name cannot hold NUL characters."))
    send = Send.objects.create(name=name, template=chosen, segment=audience, created_by=actor)
    record_audit("create", "send", send.pk, actor=actor, changes={"name": name})
    return send


@dataclass
class Audience:
    """Who a send would mail if it started now."""

    total: int
    mailable: int
    #: reason key → contacts skipped for it (only reasons with contacts)
    skipped: dict[str, int] = field(default_factory=dict)


def _audience_contacts(send: Send) -> QuerySet[Contact]:
    if send.segment is None:
        raise SendError(
            "no_audience", _("The send has no segment or list to mail (it was deleted).")
        )
    try:
        return Contact.objects.filter(segment_queries.segment_q(send.segment))
    except ConditionError as error:
        raise SendError(
            "invalid_segment",
            _("The segment %(s)s's conditions no longer hold: %(e)s")
            % {"s": send.segment, "e": error},
        ) from None


def preview_of(template: EmailTemplate | int | str, segment: Segment | int | str) -> Audience:
    """What starting a send of ``template`` to ``segment`` would do, before creating it."""
    return preview(Send(template=_template(template), segment=_segment(segment)))


def preview(send: Send) -> Audience:
    """How many contacts starting ``send`` would mail and how many it would skip, and why."""
    result = mailability.mailable(_audience_contacts(send), send.template.subscription_type)
    skipped = {k: v for k, v in result.counts().items() if k != "mailable" and v}
    total = len(result.mailable) + len(result.refused)
    return Audience(total=total, mailable=len(result.mailable), skipped=skipped)


def _language(wanted: str | None, available: Iterable[str]) -> str:
    languages = list(available)
    if wanted in languages:
        return str(wanted)
    return "en" if "en" in languages or not languages else languages[0]


def start_send(send: Send, *, actor: Actor) -> Send:
    """Freeze the recipients (one delivery each, the refused ones skipped with their reason)
    and queue the delivery tasks. Refused when nobody would be mailed, when the brand has no
    postal address, or when the template has no version."""
    with transaction.atomic():
        locked = Send.objects.select_for_update(of=("self",)).select_related("template")
        send = locked.get(pk=send.pk)
        if send.state != SendState.DRAFT:
            raise SendError(
                "not_draft",
                _("The send is %(state)s; only a draft can be started.")
                % {"state": send.get_state_display()},
            )
        brand = Brand.objects.filter(pk=1).first()
        if brand is None or not brand.postal_address.strip():
            raise SendError(
                "no_postal_address",
                _(
                    "Set the brand's postal address first: the law asks for it in every "
                    "marketing e-mail."
                ),
            )
        version = send.template.current
        if version is None or not version.compiled:
            raise SendError(
                "no_version", _("The template %(t)s has no saved version.") % {"t": send.template}
            )
        contacts = _audience_contacts(send)
        decided = mailability.mailable(contacts, send.template.subscription_type)
        if not decided.mailable:
            counts = {k: v for k, v in decided.counts().items() if k != "mailable" and v}
            reasons = ", ".join(f"{skip_reason_label(k)}: {v}" for k, v in counts.items())
            raise SendError(
                "no_recipients",
                _("This send would mail nobody: %(n)s contacts in the audience%(why)s.")
                % {"n": len(decided.refused), "why": f" ({reasons})" if reasons else ""},
            )
        now = timezone.now()
        rows = []
        people = contacts.values_list("pk", "language", "email").iterator(chunk_size=5000)
        languages = list(version.compiled)
        for pk, language, email in people:
            if pk not in decided.mailable and pk not in decided.refused:
                continue  # joined the segment a moment ago, after the audience was decided
            address = decided.mailable.get(pk)
            reason = "" if address else decided.refused.get(pk, "no_address")
            shown = address or (email or "")
            domain = shown.rpartition("@")[2] if "@" in shown else ""
            rows.append(
                (
                    send.pk,
                    version.pk,
                    pk,
                    shown,
                    domain,
                    _language(language, languages),
                    DeliveryState.QUEUED if address else DeliveryState.SKIPPED,
                    reason,
                    now,
                    0,
                    "",
                    "",
                    "",
                )
            )
        insert_rows(
            Delivery,
            [
                "send",
                "version",
                "contact",
                "email",
                "domain",
                "language",
                "state",
                "skip_reason",
                "created_at",
                "attempts",
                "claim",
                "message_id",
                "error",
            ],
            rows,
            returning=False,
        )
        send.version = version
        send.state = SendState.RUNNING
        send.recipients = len(decided.mailable)
        send.started_at = now
        send.save(update_fields=["version", "state", "recipients", "started_at"])
        record_audit(
            "start",
            "send",
            send.pk,
            actor=actor,
            changes={"recipients": send.recipients, "skipped": len(decided.refused)},
        )
        tasks = min(MAX_PARALLEL_TASKS, math.ceil(send.recipients / RECIPIENTS_PER_TASK))
        _enqueue(send.pk, tasks)
    return send


def _change_state(
    send: Send, allowed: tuple[str, ...], to: str, verb: str, *, actor: Actor
) -> Send:
    with transaction.atomic():
        send = Send.objects.select_for_update().get(pk=send.pk)
        if send.state not in allowed:
            raise SendError(
                f"cannot_{verb}",
                _("The send is %(state)s, so it cannot be %(verb)s.")
                % {"state": send.get_state_display(), "verb": _VERBS[verb]},
            )
        send.state = to
        send.save(update_fields=["state"])
        record_audit(verb, "send", send.pk, actor=actor)
    return send


_VERBS = {
    "pause": gettext_lazy("paused"),
    "resume": gettext_lazy("resumed"),
    "cancel": gettext_lazy("cancelled"),
}


def pause_send(send: Send, *, actor: Actor) -> Send:
    """Stop handing out new batches; the batch a worker holds finishes."""
    return _change_state(send, (SendState.RUNNING,), SendState.PAUSED, "pause", actor=actor)


def resume_send(send: Send, *, actor: Actor) -> Send:
    send = _change_state(send, (SendState.PAUSED,), SendState.RUNNING, "resume", actor=actor)
    queued = Delivery.objects.filter(send=send, state=DeliveryState.QUEUED).count()
    _enqueue(send.pk, max(1, min(MAX_PARALLEL_TASKS, math.ceil(queued / RECIPIENTS_PER_TASK))))
    _finish_if_done(send.pk)
    return send


def cancel_send(send: Send, *, actor: Actor) -> Send:
    """Stop the send for good: every delivery still queued is skipped (``cancelled``)."""
    with transaction.atomic():
        send = _change_state(
            send,
            (SendState.DRAFT, SendState.RUNNING, SendState.PAUSED),
            SendState.CANCELLED,
            "cancel",
            actor=actor,
        )
        Delivery.objects.filter(send=send, state=DeliveryState.QUEUED).update(
            state=DeliveryState.SKIPPED, skip_reason="cancelled", retry_at=None
        )
        send.finished_at = timezone.now()
        send.save(update_fields=["finished_at"])
    return send


SKIP_REASONS = {
    "no_address": gettext_lazy("no e-mail address"),
    "invalid_address": gettext_lazy("invalid address"),
    "suppressed": gettext_lazy("suppressed (bounced, complained or blocked)"),
    "unsubscribed": gettext_lazy("unsubscribed"),
    "not_subscribed": gettext_lazy("not subscribed"),
    "pending_confirmation": gettext_lazy("waiting to confirm the subscription"),
    "cancelled": gettext_lazy("send cancelled"),
}


def skip_reason_label(key: str) -> str:
    return str(SKIP_REASONS.get(key, key))


# -- queueing the work --------------------------------------------------------------------------


def _enqueue(send_id: int, count: int = 1, *, at: dt.datetime | None = None) -> None:
    from embudo.automation import tasks

    def enqueue() -> None:
        task = tasks.deliver_send if at is None else tasks.deliver_send.using(run_after=at)
        for _n in range(count):
            task.enqueue(send_id)

    transaction.on_commit(enqueue)


def _finish_if_done(send_id: int) -> bool:
    """Mark a running send done once no delivery is left to send."""
    if Delivery.objects.filter(send_id=send_id, state__in=_OPEN).exists():
        return False
    return bool(
        Send.objects.filter(pk=send_id, state=SendState.RUNNING).update(
            state=SendState.DONE, finished_at=timezone.now()
        )
    )


# -- recovery -----------------------------------------------------------------------------------


def claim_token() -> str:
    """Who holds a claim: host and pid (so a restarted worker knows a dead one's claims at
    once) and a random part (so a reused pid is never mistaken for the old worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _holder_is_gone(token: str) -> bool:
    host, _sep, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state == "Z"


@dataclass
class Recovery:
    requeued: int = 0
    counted_sent: int = 0
    cancelled: int = 0
    resumed_sends: list[int] = field(default_factory=list)


def recover(*, resume: bool = False) -> Recovery:
    """Release the claims of workers that are gone: a ``claimed`` delivery never reached the
    server complete, so it is queued again; a ``sending`` one may have been accepted, so it is
    counted as sent. With ``resume``, queue a delivery task for every running send with work
    left (a killed worker's task is never run again by the queue)."""
    now = timezone.now()
    held = Delivery.objects.filter(state__in=(DeliveryState.CLAIMED, DeliveryState.SENDING))
    tokens = set(held.values_list("claim", flat=True).distinct())
    gone = [token for token in tokens if _holder_is_gone(token)]
    stale = Q(claim__in=gone) | Q(claimed_at__lt=now - dt.timedelta(seconds=LEASE_SECONDS))
    result = Recovery()
    with transaction.atomic():
        claimed = Delivery.objects.filter(stale, state=DeliveryState.CLAIMED)
        result.cancelled = claimed.filter(send__state=SendState.CANCELLED).update(
            state=DeliveryState.SKIPPED, skip_reason="cancelled", claim="", claimed_at=None
        )
        result.requeued = claimed.update(state=DeliveryState.QUEUED, claim="", retry_at=None)
        result.counted_sent = Delivery.objects.filter(stale, state=DeliveryState.SENDING).update(
            state=DeliveryState.SENT,
            sent_at=now,
            error="The worker stopped after handing the message over; counted as sent.",
        )
    if result.requeued or result.counted_sent or result.cancelled:
        logger.warning(
            "e-mail recovery: %d deliveries queued again, %d counted as sent, %d cancelled",
            result.requeued,
            result.counted_sent,
            result.cancelled,
        )
    if resume:
        running = Send.objects.filter(state=SendState.RUNNING).values_list("pk", flat=True)
        for send_id in running:
            if not _finish_if_done(send_id):
                _enqueue(send_id)
                result.resumed_sends.append(send_id)
    return result


# -- claiming -----------------------------------------------------------------------------------


def _claim(send_id: int, token: str, size: int) -> list[Delivery]:
    """Claim up to ``size`` due deliveries of the send, within each domain's rate limit;
    deliveries over the limit wait until their domain's minute has room."""
    limit = settings.EMBUDO_EMAIL_RATE_PER_DOMAIN
    now = timezone.now()
    with transaction.atomic():
        due = (
            Delivery.objects.filter(send_id=send_id, state=DeliveryState.QUEUED)
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .order_by("id")
        )
        if db_connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("id", "domain")[:size])
        if not rows:
            return []
        recent = (
            Delivery.objects.filter(
                domain__in={domain for _pk, domain in rows},
                claimed_at__gte=now - dt.timedelta(minutes=1),
            )
            .values("domain")
            .annotate(n=Count("id"), first=Min("claimed_at"))
        )
        room = {r["domain"]: limit - r["n"] for r in recent}
        first = {r["domain"]: r["first"] for r in recent}
        take: list[int] = []
        wait: dict[str, list[int]] = defaultdict(list)
        for pk, domain in rows:
            if room.get(domain, limit) > 0:
                take.append(pk)
                room[domain] = room.get(domain, limit) - 1
            else:
                wait[domain].append(pk)
        for domain, pks in wait.items():
            opens = (first.get(domain) or now) + dt.timedelta(minutes=1)
            Delivery.objects.filter(pk__in=pks).update(retry_at=opens)
        if take:
            Delivery.objects.filter(pk__in=take, state=DeliveryState.QUEUED).update(
                state=DeliveryState.CLAIMED,
                claim=token,
                claimed_at=now,
                attempts=F("attempts") + 1,
            )
    if not take:
        return []
    _kill.reached("claimed")
    return list(
        Delivery.objects.filter(pk__in=take, claim=token, state=DeliveryState.CLAIMED)
        .select_related("contact", "contact__company", "contact__owner", "version")
        .order_by("id")
    )


# -- delivering ---------------------------------------------------------------------------------


class _Transient(Exception):
    """The server or the network failed in a way worth trying again (4xx, timeout, reset)."""


class _Refused(Exception):
    """The server refused the message for good (5xx)."""

    def __init__(self, message: str, *, recipient: bool = False) -> None:
        super().__init__(message)
        self.recipient = recipient


def _reply(code: int, text: bytes | str) -> str:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(body.split())}"[:480]


_LEADING_DOT = re.compile(rb"(?m)^\.")
_BARE_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


def _data_body(raw: bytes) -> bytes:
    """The message as the DATA command carries it, up to but without the terminating
    ``.``: CRLF line ends, a leading dot doubled (RFC 5321 4.5.2), ending in CRLF."""
    body = _LEADING_DOT.sub(b"..", _BARE_LINE_ENDS.sub(b"\r\n", raw))
    return body if body.endswith(b"\r\n") else body + b"\r\n"


class Courier:
    """One worker's way to the mail server: one SMTP connection reused for every message
    (opened through Django's SMTP backend, so its settings apply), or, when another backend is
    configured (anymail's providers), that backend's ``send_messages``."""

    def __init__(self, token: str) -> None:
        self.token = token
        # Any: the SMTP backend's connection and timeout are not on the base class.
        backend: Any = get_connection(fail_silently=False)
        self.smtp = isinstance(backend, SmtpBackend)
        if self.smtp and backend.timeout is None:
            backend.timeout = SMTP_TIMEOUT_SECONDS
        self.backend = backend
        self.open = False

    def close(self) -> None:
        if not self.open:
            return
        try:
            self.backend.close()
        except Exception:  # a dead connection cannot be closed politely; it is dropped
            logger.debug("closing the mail connection failed", exc_info=True)
        self.open = False

    def _drop(self) -> None:
        """Cut the connection without QUIT: a DATA in progress is discarded by the server."""
        connection = getattr(self.backend, "connection", None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()
            self.backend.connection = None
        self.open = False

    def _connection(self) -> smtplib.SMTP:
        if not self.open or getattr(self.backend, "connection", None) is None:
            try:
                self.backend.open()
                if self.backend.connection.sock is not None:
                    # The final "." goes out alone, right after the body: without NODELAY,
                    # Nagle's algorithm holds it for the server's delayed ACK (40 ms a message).
                    self.backend.connection.sock.setsockopt(
                        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                    )
                self.backend.connection.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as error:
                self.backend.connection = None
                raise _Transient(f"cannot reach the mail server: {error}") from error
            self.open = True
        connection: smtplib.SMTP = self.backend.connection
        return connection

    def deliver(self, delivery: Delivery) -> str:
        """Send one claimed delivery; its outcome (state) is committed before returning."""
        try:
            message = rendering.build_message(delivery)
        except Exception as error:  # a template that does not render for this contact
            logger.exception("delivery %s could not be rendered", delivery.pk)
            return self._fail(delivery, f"the message could not be rendered: {error}")
        message_id = str(message.extra_headers.get("Message-ID", ""))
        try:
            if self.smtp:
                return self._deliver_smtp(delivery, message, message_id)
            return self._deliver_backend(delivery, message, message_id)
        except _Transient as error:
            self._drop()
            return self._retry(delivery, str(error))
        except _Refused as error:
            outcome = self._fail(delivery, str(error))
            if error.recipient:
                # The server refused the address itself: a hard bounce, never mailed again.
                bounces.record_bounce(delivery.pk, BounceKind.HARD, str(error))
                return DeliveryState.BOUNCED
            return outcome

    def _command(
        self,
        connection: smtplib.SMTP,
        sent: Any,
        expected: tuple[int, ...],
        *,
        recipient: bool = False,
    ) -> None:
        try:
            code, text = sent()
        except (OSError, smtplib.SMTPException) as error:
            raise _Transient(f"the mail server connection failed: {error}") from error
        if code in expected:
            return
        try:
            connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()
        if 400 <= code < 500 or code == -1:
            raise _Transient(_reply(code, text))
        raise _Refused(_reply(code, text), recipient=recipient)

    def _deliver_smtp(self, delivery: Delivery, message: Any, message_id: str) -> str:
        connection = self._connection()
        encoding = message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(
            getattr(message, "envelope_sender", None) or message.from_email, encoding
        )
        recipient = sanitize_address(delivery.email, encoding)
        body = _data_body(message.message().as_bytes(linesep="\r\n"))

        def mail() -> tuple[int, bytes]:
            return connection.mail(sender)

        def rcpt() -> tuple[int, bytes]:
            return connection.rcpt(recipient)

        def data() -> tuple[int, bytes]:
            connection.putcmd("data")
            return connection.getreply()

        self._command(connection, mail, (250,))
        self._command(connection, rcpt, (250, 251), recipient=True)
        self._command(connection, data, (354,))
        try:
            connection.send(body)
        except (OSError, smtplib.SMTPException) as error:
            raise _Transient(f"the connection failed while sending the message: {error}") from error
        _kill.reached("body")
        marked = Delivery.objects.filter(
            pk=delivery.pk, claim=self.token, state=DeliveryState.CLAIMED
        ).update(state=DeliveryState.SENDING, message_id=message_id)
        if not marked:
            # Recovery took the delivery back (this worker looked dead): never finish it here.
            self._drop()
            return "released"
        _kill.reached("sending")
        try:
            connection.send(b".\r\n")
            _kill.reached("dot")
            code, text = connection.getreply()
        except (OSError, smtplib.SMTPException) as error:
            # The server may have taken it: counting it as sent is what keeps it single.
            self._drop()
            return self._sent(delivery, f"no answer after the message ({error}); counted as sent")
        _kill.reached("replied")
        if code == 250:
            return self._sent(delivery, "")
        if 400 <= code < 500:
            return self._retry(delivery, _reply(code, text), state=DeliveryState.SENDING)
        return self._fail(delivery, _reply(code, text), state=DeliveryState.SENDING)

    def _deliver_backend(self, delivery: Delivery, message: Any, message_id: str) -> str:
        # A provider's API has no "all but the last byte": the delivery is marked ``sending``
        # before the call, so a crash during it never sends again (at most once); an error the
        # provider answers with means it did not take the message, and it is tried again.
        marked = Delivery.objects.filter(
            pk=delivery.pk, claim=self.token, state=DeliveryState.CLAIMED
        ).update(state=DeliveryState.SENDING, message_id=message_id)
        if not marked:
            return "released"
        message.connection = self.backend
        try:
            self.backend.send_messages([message])
        except Exception as error:
            return self._retry(delivery, f"{type(error).__name__}: {error}", state="sending")
        provider_id = getattr(message, "anymail_status", None)
        if provider_id is not None and getattr(provider_id, "message_id", None):
            message_id = str(provider_id.message_id)
            Delivery.objects.filter(pk=delivery.pk).update(message_id=message_id)
        return self._sent(delivery, "")

    def _mine(self, delivery: Delivery, state: str) -> QuerySet[Delivery]:
        return Delivery.objects.filter(pk=delivery.pk, claim=self.token, state=state)

    def _sent(self, delivery: Delivery, note: str) -> str:
        self._mine(delivery, DeliveryState.SENDING).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), error=note[:500], retry_at=None
        )
        return DeliveryState.SENT

    def _retry(self, delivery: Delivery, error: str, *, state: str = DeliveryState.CLAIMED) -> str:
        attempts = delivery.attempts
        if attempts >= MAX_ATTEMPTS:
            return self._fail(delivery, f"{error} (gave up after {attempts} attempts)", state=state)
        wait = RETRY_BASE_SECONDS * 2 ** (attempts - 1)
        self._mine(delivery, state).update(
            state=DeliveryState.QUEUED,
            claim="",
            retry_at=timezone.now() + dt.timedelta(seconds=wait),
            error=error[:500],
        )
        return "retry"

    def _fail(self, delivery: Delivery, error: str, *, state: str = DeliveryState.CLAIMED) -> str:
        self._mine(delivery, state).update(
            state=DeliveryState.FAILED, error=error[:500], retry_at=None
        )
        return DeliveryState.FAILED


def _release(pks: list[int], token: str) -> None:
    """Give back claims a worker will not use (the send was paused or cancelled meanwhile)."""
    mine = Delivery.objects.filter(pk__in=pks, claim=token, state=DeliveryState.CLAIMED)
    mine.filter(send__state=SendState.CANCELLED).update(
        state=DeliveryState.SKIPPED, skip_reason="cancelled", claim="", claimed_at=None
    )
    mine.update(state=DeliveryState.QUEUED, claim="", claimed_at=None)


@dataclass
class Run:
    """What one delivery task did."""

    send: int
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"send": self.send, "stopped": self.stopped, **self.outcomes}


def deliver(send_id: int, *, seconds: float = TASK_SECONDS) -> Run:
    """Deliver the send's due deliveries, batch by batch, for up to ``seconds``; then queue
    what comes next (another task, a retry at its time, or nothing: the send is done)."""
    recover()
    run = Run(send_id)
    token = claim_token()
    courier = Courier(token)
    deadline = time.monotonic() + seconds
    # Claims have their own commits: this must not run inside a caller's transaction.
    try:
        while True:
            state = Send.objects.filter(pk=send_id).values_list("state", flat=True).first()
            if state != SendState.RUNNING:
                run.stopped = str(state or "deleted")
                break
            if time.monotonic() >= deadline:
                run.stopped = "time"
                break
            batch = _claim(send_id, token, CLAIM_BATCH)
            if not batch:
                run.stopped = "empty"
                break
            for n, delivery in enumerate(batch):
                run.outcomes[courier.deliver(delivery)] += 1
                running = Send.objects.filter(pk=send_id, state=SendState.RUNNING)
                if n % 10 == 9 and not running.exists():
                    _release([d.pk for d in batch[n + 1 :]], token)
                    break
    finally:
        courier.close()
        # A batch left unfinished (an error, a pause) goes back now, not at the lease's end.
        unfinished = Delivery.objects.filter(
            send_id=send_id, state=DeliveryState.CLAIMED, claim=token
        ).values_list("pk", flat=True)
        _release(list(unfinished), token)
    _follow_up(send_id, run)
    return run


def _follow_up(send_id: int, run: Run) -> None:
    if run.stopped == "time":
        _enqueue(send_id)
        return
    if run.stopped != "empty" or _finish_if_done(send_id):
        return
    now = timezone.now()
    waiting = Delivery.objects.filter(send_id=send_id, state=DeliveryState.QUEUED)
    next_due = waiting.aggregate(at=Min("retry_at"))["at"]
    if waiting.filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now)).exists():
        _enqueue(send_id)
    elif next_due is not None:
        _enqueue(send_id, at=next_due)
    else:
        # Other workers hold the last claims: look again later, in case they die.
        _enqueue(send_id, at=now + dt.timedelta(seconds=RECHECK_SECONDS))
