"""The HTTP API under /api/v1/: one NinjaAPI, a router per app, errors with stable codes.

Every error answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``; the codes are
part of the contract: ``unauthorized`` (401), ``forbidden`` (403), ``not_found`` (404),
``validation_error`` (422), ``payload_too_large`` (413), ``bad_request`` (400).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from embudo.accounts.actions import authenticate_api_key, key_allows
from embudo.accounts.models import ApiKey, Scope
from embudo.accounts.roles import role_of
from embudo.errors import ValidationFailed


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in user (session) or an API key (integrations).

    An API key is issued by an admin for a system, not a person: within its scopes it sees every
    record. A user sees what their role allows.
    """

    user: Any = None
    api_key: ApiKey | None = None

    @property
    def actor(self) -> Any:
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


api = NinjaAPI(
    title="Embudo API",
    version="1",
    description=(
        "One funnel for marketing and sales. Authenticate with `Authorization: Bearer KEY`."
    ),
    urls_namespace="api",
    docs_url="/docs",
    # Swagger UI's files come from ninja's static files ("ninja" is an installed app), and its
    # online spec validator is off: Embudo must work with no internet access.
    docs=Swagger(settings={"validatorUrl": None}),
    auth=[BearerKey(), Session(csrf=True)],
)


def error_response(
    request: HttpRequest, status: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return api.create_response(request, {"error": body}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(request, exc.status_code, exc.code, exc.message, exc.fields)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    codes = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        413: "payload_too_large",
        429: "rate_limited",
    }
    message = exc.message
    cause = exc.__cause__
    # ninja wraps a body it cannot parse into a bare "Cannot parse request body"; say why.
    if isinstance(cause, json.JSONDecodeError):
        message = (
            f"the request body is not valid JSON: {cause.msg} "
            f"(line {cause.lineno}, column {cause.colno})"
        )
    elif isinstance(cause, UnicodeDecodeError):
        message = "the request body is not valid JSON: it is not UTF-8 text"
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), message)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    message = (
        "the API key is unknown or revoked"
        if header.lower().startswith("bearer ")
        else "send 'Authorization: Bearer KEY' or log in"
    )
    return error_response(request, 401, "unauthorized", message)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(request, 403, "forbidden", str(exc) or "not allowed")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", str(exc) or "no such record")


@api.exception_handler(ValidationFailed)
def _invalid(request: HttpRequest, exc: ValidationFailed) -> HttpResponse:
    return error_response(
        request, 422, "validation_error", "the request has invalid fields", exc.errors
    )


@api.exception_handler(NinjaValidationError)
def _schema_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for item in exc.errors:
        # ninja prefixes where the value came from ("body", "query", "path") and the body
        # parameter's name; the caller knows the field by its own name.
        location = [str(part) for part in item.get("loc", ())]
        if location[:1] in (["body"], ["query"], ["path"]):
            location = location[1:]
        if location[:1] == ["payload"]:
            location = location[1:]
        fields.setdefault(".".join(location) or "body", []).append(item.get("msg", "invalid"))
    message = "the request has invalid fields"
    if any("JSON" in msg for msgs in fields.values() for msg in msgs):
        message = "the request body is not valid JSON"
    return error_response(request, 422, "validation_error", message, fields)


# Each app mounts its router here.
from embudo.crm.api import router as crm_router  # noqa: E402

api.add_router("/", crm_router)

from embudo.tracking.api import router as tracking_router  # noqa: E402

api.add_router("/", tracking_router)

from embudo.deals.api import router as deals_router  # noqa: E402
from embudo.reports.api import router as reports_router  # noqa: E402

api.add_router("/", deals_router)
api.add_router("/", reports_router)

from embudo.analytics.api import router as analytics_router  # noqa: E402
from embudo.handoff.api import router as handoff_router  # noqa: E402
from embudo.scoring.api import router as scoring_router  # noqa: E402
from embudo.scoring.predictive.api import router as predictive_router  # noqa: E402
from embudo.segments.api import router as segments_router  # noqa: E402

api.add_router("/", segments_router)
api.add_router("/", scoring_router)
api.add_router("/", predictive_router)
api.add_router("/", handoff_router)
api.add_router("/", analytics_router)
