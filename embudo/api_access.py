"""Who is calling the HTTP API and what they may do, and the shape of its error answers: what
the app routers (and the events fast lane) use, apart from the NinjaAPI that mounts them.

Every error answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``; the codes are
part of the contract: ``unauthorized`` (401), ``forbidden`` (403), ``not_found`` (404),
``validation_error`` (422), ``payload_too_large`` (413), ``bad_request`` (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from ninja.errors import HttpError
from ninja.renderers import JSONRenderer
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from embudo.accounts.actions import authenticate_api_key, key_allows
from embudo.accounts.actors import Actor
from embudo.accounts.models import ApiKey, Scope
from embudo.accounts.roles import role_of

# The renderer the NinjaAPI uses (its default): an error answered outside ninja's dispatch
# reads exactly like one answered inside it.
_RENDERER = JSONRenderer()
_CONTENT_TYPE = f"{_RENDERER.media_type}; charset={_RENDERER.charset}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in user (session) or an API key (integrations).

    An API key is issued by an admin for a system, not a person: within its scopes it sees every
    record. A user sees what their role allows.
    """

    user: User | None = None
    api_key: ApiKey | None = None

    @property
    def actor(self) -> Actor:
        if self.user is not None:
            return self.user
        return self.api_key.created_by if self.api_key else None

    def require(self, scope: str) -> None:
        """Raise 403 unless this caller holds ``scope`` (read, write, admin or ingest)."""
        if self.api_key is not None:
            if not key_allows(self.api_key, scope):
                raise ApiError(
                    403,
                    "forbidden",
                    f"this API key lacks the '{scope}' scope (it has: "
                    f"{', '.join(self.api_key.scopes)})",
                )
            return
        role = role_of(self.user)
        allowed: dict[str, bool] = {
            Scope.READ: role is not None,
            Scope.WRITE: role is not None,
            Scope.ADMIN: role == "admin",
            Scope.INGEST: role is not None,
        }
        if not allowed.get(scope, False):
            raise ApiError(403, "forbidden", f"your role may not use the '{scope}' scope")

    def require_perm(self, perm: str) -> None:
        """Raise 403 unless a session user holds the Django permission ``perm``
        (API keys are governed by their scopes instead)."""
        if self.user is not None and not self.user.has_perm(perm):
            raise ApiError(403, "forbidden", f"your role does not allow {perm.split('.')[-1]}")


class ApiError(HttpError):
    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(status, message)
        self.code = code
        self.fields = fields or {}


class BearerKey(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        key = authenticate_api_key(token)
        if key is None:
            return None
        return Principal(api_key=key)


class Session(APIKeyCookie):
    """The browser's Django session (with CSRF protection on writes)."""

    param_name = "sessionid"

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.COOKIES.get(self.param_name)
        # Check CSRF only for a request that carries a session: a script without credentials
        # gets the 401 that tells it to send a key, not a CSRF complaint. (ninja's own
        # APIKeyCookie._get_key runs the check; overriding it must keep it.)
        exempt = getattr(request, "_ninja_csrf_exempt", False)
        if key and self.csrf and not exempt and check_csrf(request) is not None:
            raise ApiError(
                403,
                "forbidden",
                "the CSRF token is missing or wrong: send the csrftoken cookie's value "
                "in an X-CSRFToken header (or use an API key)",
            )
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        if not key:
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return Principal(user=user)
        return None


def principal(request: HttpRequest) -> Principal:
    auth = request.auth  # type: ignore[attr-defined]
    assert isinstance(auth, Principal)
    return auth


def allow(request: HttpRequest, scope: str, perm: str) -> Principal:
    """The caller, once it may do this: an API key needs ``scope``; a user, the role's ``perm``."""
    who = principal(request)
    if who.api_key is not None:
        who.require(scope)
    else:
        who.require_perm(perm)
    return who


def error_response(
    request: HttpRequest, status: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    content = _RENDERER.render(request, {"error": body}, response_status=status)
    return HttpResponse(content, status=status, content_type=_CONTENT_TYPE)
