"""The public capture endpoints (/t.js, /t/collect, /t.gif, /f/<form>) and the capture pages
(Sources, and the settings for site keys, forms and channel rules)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, role_of
from embudo.errors import ValidationFailed
from embudo.tracking import actions, queries
from embudo.tracking.events import FIELDS
from embudo.tracking.models import Channel, ChannelRule, EventSource, Form, SiteKey
from embudo.tracking.ratelimit import allow, client_address
from embudo.web.access import acting_user

SNIPPET = (Path(__file__).parent / "static" / "tracking" / "t.js").read_bytes()
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# What the public snippet may say about an event: never a contact by id or external id.
PUBLIC_FIELDS = FIELDS - {"contact_id", "external_id"}
MAX_COLLECT_BODY = 256 * 1024
MAX_COLLECT_EVENTS = 100
# Requests per client address per window (seconds): generous for browsing, tight for forms.
COLLECT_LIMIT = (600, 60)
PIXEL_LIMIT = (600, 60)
FORM_LIMIT = (10, 600)


# -- public endpoints -----------------------------------------------------------------------------


@require_GET
def snippet(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(SNIPPET, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def request_origin(request: HttpRequest) -> str:
    """The page's origin: the Origin header, or the Referer's origin when a browser sends none."""
    origin = request.headers.get("Origin", "")
    if origin and origin != "null":
        return origin.lower()
    referer = request.headers.get("Referer", "")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}".lower()
    return ""


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "86400"
    response["Vary"] = "Origin"
    return response


def _refuse(status: int, code: str, message: str, origin: str = "") -> HttpResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    return _cors(response, origin) if origin else response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def collect(request: HttpRequest) -> HttpResponse:
    """Events from the snippet: ``{"site_key", "visitor_id", "events": [...]}``, sent as
    text/plain by ``navigator.sendBeacon`` so browsers need no preflight."""
    origin = request_origin(request)
    if request.method == "OPTIONS":
        # A preflight carries no site key; the POST itself is checked against the key's origins.
        return _cors(HttpResponse(status=204), origin) if origin else HttpResponse(status=204)
    if not allow("collect", client_address(request), *COLLECT_LIMIT):
        return _refuse(429, "rate_limited", "too many requests from this address", origin)
    if len(request.body) > MAX_COLLECT_BODY:
        return _refuse(413, "payload_too_large", "the body is over 256 KB", origin)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "bad_request", "the body is not valid JSON", origin)
    if not isinstance(payload, dict):
        return _refuse(400, "bad_request", "send an object with site_key and events", origin)
    site_key = queries.live_site_key(str(payload.get("site_key") or ""))
    if site_key is None:
        return _refuse(401, "unauthorized", "unknown or revoked site key")
    if not origin or origin not in site_key.allowed_origins:
        return _refuse(403, "origin_not_allowed", f"origin {origin or '(none)'} is not allowed")
    events = payload.get("events")
    if not isinstance(events, list):
        return _refuse(400, "bad_request", "'events' must be an array", origin)
    if len(events) > MAX_COLLECT_EVENTS:
        return _refuse(413, "payload_too_large", f"at most {MAX_COLLECT_EVENTS} events", origin)
    visitor_id = payload.get("visitor_id")
    if visitor_id is not None:
        # One browser per beacon: every event is its visitor's, whatever the items say.
        events = [
            {**event, "visitor_id": visitor_id} if isinstance(event, dict) else event
            for event in events
        ]
    result = actions.record_events(events, source=EventSource.SNIPPET, allowed=PUBLIC_FIELDS)
    return _cors(JsonResponse(result.as_dict()), origin)


@require_GET
def pixel(request: HttpRequest) -> HttpResponse:
    """A one-pixel GIF that records an event: ``?t=TOKEN`` (signed, from e-mails) or
    ``?k=SITE_KEY&v=VISITOR&e=TYPE&u=URL`` (pages without JavaScript)."""
    recorded = _record_pixel(request)
    response = HttpResponse(GIF, content_type="image/gif", status=200 if recorded else 400)
    response["Cache-Control"] = "no-store, max-age=0"
    return response


def _record_pixel(request: HttpRequest) -> bool:
    if not allow("pixel", client_address(request), *PIXEL_LIMIT):
        return False
    params = request.GET
    event: dict[str, Any]
    if token := params.get("t"):
        claims = queries.read_pixel_token(token)
        if claims is None:
            return False
        properties = claims.get("p") if isinstance(claims.get("p"), dict) else {}
        event = {"type": claims.get("e") or "email_open", "contact_id": claims.get("c")}
        if properties:
            event["properties"] = properties
    else:
        site_key = queries.live_site_key(params.get("k", ""))
        origin = request_origin(request)
        if site_key is None or origin not in site_key.allowed_origins:
            return False
        event = {"type": params.get("e") or "page_view", "visitor_id": params.get("v") or None}
        for param, name in (("u", "url"), ("r", "referrer")):
            if params.get(param):
                event[name] = params[param]
    result = actions.record_events([event], source=EventSource.PIXEL)
    return result.rejected == 0


@csrf_exempt
@require_http_methods(["GET", "POST", "OPTIONS"])
def form_endpoint(request: HttpRequest, slug: str) -> HttpResponse:
    """A form's public address: GET shows it hosted by Embudo, POST takes a submission from the
    hosted page or from an allowed site embedding it."""
    form = queries.active_form(slug)
    origin = request_origin(request)
    own_origin = f"{request.scheme}://{request.get_host()}".lower()
    allowed = form is not None and (origin == own_origin or origin in form.allowed_origins)
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), origin) if allowed else HttpResponse(status=204)
    if form is None:
        return _form_reply(request, None, 404, _("This form does not exist or is closed."))
    if request.method == "GET":
        return render(request, "tracking/form_page.html", {"form": form, "errors": {}})
    if not allowed:
        return _form_reply(
            request,
            form,
            403,
            _("Submissions are not accepted from %(origin)s.")
            % {"origin": origin or _("an unknown page")},
        )
    cors = origin if origin != own_origin else ""
    if not allow(f"form:{form.pk}", client_address(request), *FORM_LIMIT):
        return _form_reply(
            request, form, 429, _("Too many submissions from your address; try again later."), cors
        )
    if request.POST.get("_hp"):
        # A bot filled the hidden field: answer as if all went well and keep nothing.
        return _form_done(request, form, cors)
    try:
        actions.submit_form(
            form,
            request.POST,
            visitor_id=request.POST.get("_vid", ""),
            page_url=request.POST.get("_url") or request.headers.get("Referer", ""),
            referrer=request.POST.get("_referrer", ""),
        )
    except ValidationFailed as failed:
        if _wants_json(request):
            response = JsonResponse({"ok": False, "errors": failed.errors}, status=400)
            return _cors(response, cors) if cors else response
        return render(
            request,
            "tracking/form_page.html",
            {"form": form, "errors": failed.errors, "values": request.POST},
            status=400,
        )
    return _form_done(request, form, cors)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form_done(request: HttpRequest, form: Form, cors: str) -> HttpResponse:
    message = form.thank_you_message or _("Thank you! We have received your details.")
    if _wants_json(request):
        response = JsonResponse({"ok": True, "message": message, "redirect": form.redirect_url})
        return _cors(response, cors) if cors else response
    if form.redirect_url:
        return redirect(form.redirect_url, permanent=False)
    return render(request, "tracking/form_done.html", {"form": form, "message": message})


def _form_reply(
    request: HttpRequest, form: Form | None, status: int, message: str, cors: str = ""
) -> HttpResponse:
    if _wants_json(request):
        response = JsonResponse({"ok": False, "errors": {"form": [message]}}, status=status)
        return _cors(response, cors) if cors else response
    return render(
        request, "tracking/form_done.html", {"form": form, "message": message}, status=status
    )


# -- pages ----------------------------------------------------------------------------------------

View = Callable[..., HttpResponse]


def roles_only(*roles: str) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if role_of(request.user) not in roles:
                raise PermissionDenied(_("Your role does not allow this."))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


PERIODS = {"7": 7, "30": 30, "90": 90, "365": 365}


@roles_only(ADMIN, MARKETING, SALES_MANAGER)
def sources(request: HttpRequest) -> HttpResponse:
    """Contacts and touchpoints by channel and by campaign over a period."""
    period = request.GET.get("period", "30")
    start_raw, end_raw = request.GET.get("from", ""), request.GET.get("to", "")
    if start_raw and end_raw:
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(start_raw), dt.time(), dt.UTC)
            end = dt.datetime.combine(dt.date.fromisoformat(end_raw), dt.time(), dt.UTC)
            end += dt.timedelta(days=1)
            report_request = queries.SourcesRequest(start=start, end=end)
            period = ""
        except ValueError:
            messages.error(request, _("Dates must look like 2026-03-31."))
            report_request = queries.SourcesRequest.last_days(30)
    else:
        report_request = queries.SourcesRequest.last_days(PERIODS.get(period, 30))
    report = queries.sources_report(report_request)
    return render(
        request,
        "tracking/sources.html",
        {
            "report": report,
            "period": period,
            "periods": PERIODS,
            "start": report_request.start.date().isoformat(),
            "end": (report_request.end - dt.timedelta(seconds=1)).date().isoformat(),
        },
    )


def _base_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


@roles_only(ADMIN, MARKETING)
def capture_settings(request: HttpRequest) -> HttpResponse:
    base = _base_url(request)
    keys = [(key, queries.snippet_code(key, base)) for key in queries.site_keys()]
    counts = queries.form_submission_counts()
    forms = [(form, counts.get(form.slug, 0)) for form in queries.forms()]
    return render(
        request, "tracking/settings.html", {"keys": keys, "forms": forms, "base_url": base}
    )


@roles_only(ADMIN, MARKETING)
@require_POST
def site_key_create(request: HttpRequest) -> HttpResponse:
    try:
        site_key = actions.create_site_key(
            request.POST.get("name", ""),
            request.POST.get("allowed_origins", ""),
            actor=acting_user(request),
        )
    except ValidationFailed as failed:
        for problems in failed.errors.values():
            for problem in problems:
                messages.error(request, problem)
    else:
        messages.success(request, _("Site key “%(name)s” created.") % {"name": site_key.name})
    return redirect("tracking:settings")


@roles_only(ADMIN, MARKETING)
@require_POST
def site_key_update(request: HttpRequest, key_id: int) -> HttpResponse:
    site_key = get_object_or_404(SiteKey, pk=key_id)
    try:
        if request.POST.get("revoke"):
            actions.revoke_site_key(site_key, actor=acting_user(request))
            messages.success(request, _("Site key revoked."))
        else:
            actions.update_site_key(
                site_key, request.POST.get("allowed_origins", ""), actor=acting_user(request)
            )
            messages.success(request, _("Allowed origins saved."))
    except ValidationFailed as failed:
        for problems in failed.errors.values():
            for problem in problems:
                messages.error(request, problem)
    queries.forget_site_keys()
    return redirect("tracking:settings")


def parse_field_lines(text: str) -> list[dict[str, Any]]:
    """The form editor's field list, one field a line: ``name, label, type, required, maps_to``
    (``required`` is "required" or blank; a select's choices follow as ``a|b|c``)."""
    fields: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        parts += [""] * (6 - len(parts))
        fields.append(
            {
                "name": parts[0],
                "label": parts[1],
                "type": parts[2] or "text",
                "required": parts[3].lower() in {"required", "yes", "true", "1"},
                "maps_to": parts[4],
                "choices": [c.strip() for c in parts[5].split("|") if c.strip()],
            }
        )
    return fields


def field_lines(fields: list[dict[str, Any]]) -> str:
    return "\n".join(
        ", ".join(
            [
                f["name"],
                f["label"],
                f["type"],
                "required" if f["required"] else "",
                f["maps_to"],
                "|".join(f.get("choices") or []),
            ]
        ).rstrip(", ")
        for f in fields
    )


DEFAULT_FIELDS = (
    "email, Email, email, required, email\n"
    "first_name, First name, text, , first_name\n"
    "last_name, Last name, text, , last_name\n"
    "company, Company, text"
)


@roles_only(ADMIN, MARKETING)
def form_edit(request: HttpRequest, form_id: int | None = None) -> HttpResponse:
    form = get_object_or_404(Form, pk=form_id) if form_id is not None else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data = {
            "name": request.POST.get("name", ""),
            "fields": parse_field_lines(request.POST.get("fields", "")),
            "consent_text": request.POST.get("consent_text", ""),
            "consent_required": bool(request.POST.get("consent_required")),
            "thank_you_message": request.POST.get("thank_you_message", ""),
            "redirect_url": request.POST.get("redirect_url", ""),
            "allowed_origins": request.POST.get("allowed_origins", ""),
            "is_active": bool(request.POST.get("is_active")) or form is None,
        }
        try:
            if form is None:
                form = actions.create_form(data, actor=acting_user(request))
            else:
                actions.update_form(form, data, actor=acting_user(request))
        except ValidationFailed as failed:
            errors = failed.errors
        else:
            messages.success(request, _("Form “%(name)s” saved.") % {"name": form.name})
            return redirect("tracking:form_edit", form_id=form.pk)
    values = request.POST if request.method == "POST" else None
    return render(
        request,
        "tracking/form_edit.html",
        {
            "form_obj": form,
            "errors": errors,
            "values": values,
            "fields_text": (values.get("fields") if values is not None else None)
            or (field_lines(form.fields) if form else DEFAULT_FIELDS),
            "embed_code": queries.form_embed_code(form, _base_url(request)) if form else "",
            "origins_text": "\n".join(form.allowed_origins) if form else "",
        },
    )


@roles_only(ADMIN, MARKETING)
def channel_rules(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if request.POST.get("reset"):
                actions.reset_channel_rules(actor=acting_user(request))
            else:
                rows = [
                    {
                        "channel": channel,
                        "source_pattern": source,
                        "medium_pattern": medium,
                        "campaign_pattern": campaign,
                        "note": note,
                    }
                    for channel, source, medium, campaign, note in zip(
                        request.POST.getlist("channel"),
                        request.POST.getlist("source_pattern"),
                        request.POST.getlist("medium_pattern"),
                        request.POST.getlist("campaign_pattern"),
                        request.POST.getlist("note"),
                        strict=False,
                    )
                    if channel
                ]
                actions.save_channel_rules(rows, actor=acting_user(request))
        except ValidationFailed as failed:
            errors = failed.errors
        else:
            messages.success(request, _("Channel rules saved."))
            return redirect("tracking:channel_rules")
    return render(
        request,
        "tracking/channel_rules.html",
        {
            "rules": ChannelRule.objects.order_by("position", "id"),
            "channels": Channel.choices,
            "errors": errors,
            "now": timezone.now(),
        },
    )
