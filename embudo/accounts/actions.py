"""Users, API keys and the audit log: every write the accounts app cares about."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from embudo.accounts.actors import Actor
from embudo.accounts.models import ApiKey, AuditEntry, Scope
from embudo.accounts.roles import ADMIN, ROLES, sync_role_groups
from embudo.errors import EmbudoError

KEY_PREFIX = "emb_"


class AccountError(EmbudoError, ValueError):
    """A user or key request that cannot be carried out; the message says why."""


def record_audit(
    action: str,
    object_type: str,
    object_id: Any = "",
    *,
    actor: Actor = None,
    api_key: ApiKey | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        api_key=api_key,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=changes or {},
    )


@transaction.atomic
def create_user(
    username: str,
    *,
    role: str,
    password: str | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> Any:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise AccountError(f"a user named {username!r} already exists")
    if not Group.objects.filter(name=role).exists():
        sync_role_groups()
    user = user_model.objects.create_user(
        username=username,
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_staff=role == ADMIN,
        is_superuser=role == ADMIN,
    )
    user.groups.add(Group.objects.get(name=role))
    record_audit("user.create", "user", user.pk, changes={"role": role})
    return user


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full key, shown to the user once and never stored


def _digest(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def create_api_key(name: str, scopes: Iterable[str], *, created_by: Any = None) -> IssuedKey:
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in Scope.values]
    if unknown:
        raise AccountError(
            f"unknown scope {', '.join(unknown)}; choose from {', '.join(Scope.values)}"
        )
    if not scope_list:
        raise AccountError("an API key needs at least one scope")
    if not name.strip():
        raise AccountError("an API key needs a name")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name.strip(),
        prefix=prefix,
        digest=_digest(secret),
        scopes=scope_list,
        created_by=created_by,
    )
    record_audit(
        "apikey.create", "apikey", key.pk, actor=created_by, changes={"scopes": scope_list}
    )
    return IssuedKey(key=key, secret=secret)


def revoke_api_key(key: ApiKey, *, actor: Actor = None) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    record_audit("apikey.revoke", "apikey", key.pk, actor=actor)


def authenticate_api_key(secret: str) -> ApiKey | None:
    """The live key this secret belongs to, or None (unknown, malformed or revoked)."""
    if not secret.startswith(KEY_PREFIX):
        return None
    prefix = secret[len(KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not secrets.compare_digest(key.digest, _digest(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def key_allows(key: ApiKey, needed: str) -> bool:
    """Scopes nest: admin ⊃ write ⊃ read; ingest stands alone."""
    granted = set(key.scopes)
    if Scope.ADMIN in granted:
        return True
    if needed == Scope.READ:
        return bool(granted & {Scope.READ, Scope.WRITE})
    return needed in granted
