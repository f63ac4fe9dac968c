"""`embudo apikey create|list|revoke`: keys that let other systems call Embudo's API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from embudo.accounts.actions import KEY_PREFIX, AccountError, create_api_key, revoke_api_key
from embudo.accounts.models import ApiKey, Scope
from embudo.commands import DataCommand


class Command(DataCommand):
    help = (
        "Manage API keys: `create --name NAME --scope SCOPE [--scope …]` prints the key once "
        "(only its hash is kept), `list` shows every key, `revoke PREFIX` disables one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = sub.add_parser("create", help="Issue a new key and print it once.")
        create.add_argument("--name", required=True, help="What the key is for, e.g. 'website'.")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            help=f"Repeatable; one of {', '.join(Scope.values)} (admin ⊃ write ⊃ read).",
        )
        create.add_argument(
            "--user", default=None, help="The user the key acts for (shown in the audit log)."
        )
        listing = sub.add_parser("list", help="Show every key: prefix, name, scopes, use.")
        listing.add_argument("--active", action="store_true", help="Leave out revoked keys.")
        revoke = sub.add_parser("revoke", help="Disable a key by its prefix.")
        revoke.add_argument("prefix", help="The prefix `list` shows (or the whole key).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options["name"], options["scopes"], options["user"])
        elif action == "list":
            self._list(active_only=options["active"])
        else:
            self._revoke(options["prefix"])

    def _create(self, name: str, scopes: list[str], username: str | None) -> None:
        user = None
        if username is not None:
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(f"no active user named {username!r}")
        try:
            issued = create_api_key(name, scopes, created_by=user)
        except AccountError as error:
            raise CommandError(str(error)) from None
        key = issued.key
        self.stdout.write(
            f"Created API key {key.name!r} (prefix {key.prefix}, scopes {', '.join(key.scopes)})."
        )
        self.stdout.write("Copy it now: Embudo keeps only its hash and cannot show it again.")
        self.stdout.write(issued.secret)

    def _list(self, *, active_only: bool) -> None:
        keys = ApiKey.objects.order_by("created_at", "pk")
        if active_only:
            keys = keys.filter(revoked_at__isnull=True)
        rows = [
            (
                key.prefix,
                key.name,
                ",".join(key.scopes),
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active",
            )
            for key in keys
        ]
        if not rows:
            self.stdout.write(
                "No active API keys."
                if active_only
                else "No API keys yet: `embudo apikey create --name NAME --scope read`."
            )
            return
        header = ("PREFIX", "NAME", "SCOPES", "CREATED", "LAST USED", "STATUS")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )

    def _revoke(self, given: str) -> None:
        prefix = given.strip()
        if prefix.startswith(KEY_PREFIX):
            prefix = prefix[len(KEY_PREFIX) :].split("_", 1)[0]
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(
                f"no API key with prefix {prefix!r}; `embudo apikey list` shows them"
            )
        if key.revoked_at is not None:
            raise CommandError(
                f"API key {key.name!r} ({key.prefix}) was already revoked on "
                f"{key.revoked_at:%Y-%m-%d %H:%M}"
            )
        revoke_api_key(key)
        self.stdout.write(f"Revoked API key {key.name!r} ({key.prefix}); it no longer works.")
