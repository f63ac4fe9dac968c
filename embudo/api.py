"""The HTTP API under /api/v1/: one NinjaAPI, its exception handlers (each answering in the
error format of :mod:`embudo.api_access`), and a router per app mounted on it."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from embudo.analytics.api import router as analytics_router
from embudo.api_access import ApiError, BearerKey, Session, error_response
from embudo.automation.api_consent import router as consent_router
from embudo.automation.api_sends import router as email_sends_router
from embudo.automation.api_templates import router as email_templates_router
from embudo.crm.api import router as crm_router
from embudo.deals.api import router as deals_router
from embudo.errors import ValidationFailed
from embudo.handoff.api import router as handoff_router
from embudo.predictive.api import router as predictive_router
from embudo.reports.api import router as reports_router
from embudo.scoring.api import router as scoring_router
from embudo.segments.api import router as segments_router
from embudo.tracking.api import router as tracking_router


class OfflineSwagger(Swagger):
    """Swagger UI rendered from django-ninja's templates and static files, which the settings
    list by folder (ninja is not an installed app, so ninja itself would fall back to a CDN)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            # The session auth checks CSRF, so "Try it out" from the page sends the token.
            "add_csrf": True,
        }
        return render(request, self.template, context)


api = NinjaAPI(
    title="Embudo API",
    version="1",
    description=(
        "One funnel for marketing and sales. Authenticate with `Authorization: Bearer KEY`."
    ),
    urls_namespace="api",
    docs_url="/docs",
    # Swagger UI's files come from ninja's own static files, and its online spec validator is
    # off: Embudo must work with no internet access.
    docs=OfflineSwagger(settings={"validatorUrl": None}),
    auth=[BearerKey(), Session(csrf=True)],
)


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


# Each app mounts its router here (the OpenAPI document lists their operations in this order).
for router in (
    crm_router,
    tracking_router,
    deals_router,
    reports_router,
    segments_router,
    scoring_router,
    predictive_router,
    handoff_router,
    analytics_router,
    email_templates_router,
    consent_router,
    email_sends_router,
):
    api.add_router("/", router)
