"""``embudo mail-in``: a small SMTP server (aiosmtpd) that takes the bounce messages mail
servers send to the VERP return paths (``bounces+<delivery>-<signature>@EMBUDO_BOUNCE_DOMAIN``)
and records what they report. Point the bounce domain's MX (or a relay) at it.

It refuses any recipient that is not one of our signed return paths, so it is no open relay
and nobody can report a bounce for someone else's address.
"""

from __future__ import annotations

import logging
from typing import Any

from aiosmtpd.controller import Controller
from asgiref.sync import sync_to_async
from django.db import connection

from embudo.automation import bounces, links

logger = logging.getLogger(__name__)

#: The largest bounce message taken (a DSN quotes the original message, sometimes whole).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class BounceHandler:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            links.read_return_path(address)
        except links.BadLink:
            return "550 5.1.1 Not an Embudo return path"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        outcomes = await sync_to_async(_process, thread_sensitive=True)(
            raw, list(envelope.rcpt_tos)
        )
        for outcome in outcomes:
            logger.info(
                "bounce recorded: delivery %s, %s, %s%s",
                outcome.delivery_id,
                outcome.email,
                outcome.kind,
                " (suppressed)" if outcome.suppressed else "",
            )
        return "250 OK"


def _process(raw: bytes, recipients: list[str]) -> list[bounces.BounceOutcome]:
    # A long-running server thread: a fresh database connection per message, closed after it,
    # as a web request has (bounces are few; a stale connection would be worse).
    try:
        return bounces.process_bounce_message(raw, recipients)
    finally:
        connection.close()


def controller(host: str, port: int) -> Controller:
    """The server, not started yet (``start()`` / ``stop()``)."""
    return Controller(
        BounceHandler(),
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE_BYTES,
        server_hostname="embudo-mail-in",
    )
