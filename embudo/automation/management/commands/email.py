"""`embudo email send|status|cancel`: broadcasts from the command line.

embudo email send --template "Spring news" --segment "Customers" [--name N] [--yes]
embudo email status 12
embudo email cancel 12
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils.formats import number_format

from embudo.automation import send_reports, sending
from embudo.automation.models import Send
from embudo.commands import DataCommand


def _n(value: int) -> str:
    return number_format(value, force_grouping=True)


class Command(DataCommand):
    help = "E-mail broadcasts: `send` one to a segment or list, `status` of a send, `cancel` one."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, parser_class=CommandParser)
        send = sub.add_parser("send", help="Send a template to a segment or static list.")
        send.add_argument("--template", required=True, help="The template's name or id.")
        send.add_argument("--segment", required=True, help="The segment's or list's name or id.")
        send.add_argument(
            "--name", default="", help="The send's name (default: template → segment)."
        )
        send.add_argument(
            "--yes", action="store_true", help="Start without asking (scripts, cron jobs)."
        )
        status = sub.add_parser("status", help="Where a send stands.")
        status.add_argument("send", type=int)
        cancel = sub.add_parser("cancel", help="Cancel a send: what is still queued is skipped.")
        cancel.add_argument("send", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['subcommand']}")(options)
        except sending.SendError as error:
            raise CommandError(str(error)) from None

    def _find(self, pk: int) -> Send:
        send = Send.objects.select_related("template", "segment").filter(pk=pk).first()
        if send is None:
            raise CommandError(f"there is no send with id {pk}")
        return send

    def _send(self, options: dict[str, Any]) -> None:
        audience = sending.preview_of(options["template"], options["segment"])
        why = ", ".join(
            f"{_n(n)} {sending.skip_reason_label(reason)}" for reason, n in audience.skipped.items()
        )
        self.stdout.write(
            f"This will mail {_n(audience.mailable)} contacts"
            + (f", {_n(audience.total - audience.mailable)} skipped ({why})" if why else "")
            + "."
        )
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("not started: confirm with --yes when not at a terminal")
            if input("Start it? [y/N] ").strip().lower() not in {"y", "yes", "s", "si", "sí"}:
                self.stdout.write("Not started.")
                return
        # One transaction: a send that cannot start leaves no draft behind.
        with transaction.atomic():
            send = sending.create_send(
                template=options["template"],
                segment=options["segment"],
                name=options["name"],
                actor=None,
            )
            send = sending.start_send(send, actor=None)
        self.stdout.write(
            f"Send {send.pk} “{send.name}” started: {_n(send.recipients)} messages queued; "
            f"`embudo worker` delivers them, `embudo email status {send.pk}` follows them."
        )

    def _status(self, options: dict[str, Any]) -> None:
        send = self._find(options["send"])
        shown = send_reports.progress([send.pk])[send.pk]
        self.stdout.write(
            f"Send {send.pk} “{send.name}”: {send.get_state_display()}, "
            f"{shown.percent:.0f}% of {_n(shown.recipients)} recipients"
        )
        for label, value in (
            ("queued", shown.queued),
            ("in flight", shown.in_flight),
            ("sent", shown.sent),
            ("skipped", shown.skipped),
            ("failed", shown.failed),
            ("bounced", shown.bounced),
            ("opened", shown.opened),
            ("clicked", shown.clicked),
            ("unsubscribed", shown.unsubscribed),
        ):
            self.stdout.write(f"  {label:<13}{_n(value):>10}")
        for reason, n in send_reports.skip_reasons(send).items():
            self.stdout.write(f"    skipped, {sending.skip_reason_label(reason)}: {_n(n)}")

    def _cancel(self, options: dict[str, Any]) -> None:
        send = sending.cancel_send(self._find(options["send"]), actor=None)
        shown = send_reports.progress([send.pk])[send.pk]
        self.stdout.write(
            f"Send {send.pk} cancelled: {_n(shown.sent)} sent before, "
            f"{_n(shown.skipped)} skipped in all."
        )
