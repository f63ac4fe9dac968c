"""The events API's fast lane: ``POST /api/v1/events`` with a valid ingest key, answered
ahead of the middleware that only browser sessions need."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse
from django.utils import translation

from embudo.accounts.actions import key_allows
from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, error_response
from embudo.tracking.api import ingest
from embudo.tracking.keys import cached_api_key


class EventsShortcut:
    """Answer ``POST /api/v1/events`` carrying a valid ingest key before the rest of the stack.

    Single events come thousands of times a second, and the session, locale, CSRF, auth and
    message middleware, URL routing and ninja's dispatch cost more than storing the event. None
    of them serves a request authenticated by a Bearer key: no cookie is read or set, nothing is
    rendered in the user's language, and CSRF protects cookie sessions only. So this middleware,
    placed right after the security and static-file ones, checks the key itself (through the
    same cache), checks the Host header as CommonMiddleware would, and calls the endpoint's own
    code. Anything else — no key, a wrong or revoked key, a key without the ``ingest`` scope, a
    browser session — goes on through the full stack and gets exactly the usual answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._path = ""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path_info == (self._path or self._find_path()):
            caller = _ingest_key(request.META.get("HTTP_AUTHORIZATION", ""))
            if caller is not None:
                request.get_host()  # refuses a Host not in ALLOWED_HOSTS, as the full stack does
                # The language LocaleMiddleware would pick: a thread keeps the last one it was
                # given, and what runs after the commit (hooks) must not inherit a stranger's.
                translation.activate(translation.get_language_from_request(request))
                try:
                    return ingest(request, caller)
                except ApiError as error:
                    return error_response(
                        request, error.status_code, error.code, error.message, error.fields
                    )
        return self.get_response(request)

    def _find_path(self) -> str:
        self._path = "/" + reverse("api:ingest_events")[len(get_script_prefix()) :]
        return self._path


def _ingest_key(header: str) -> Principal | None:
    """The caller behind ``Authorization: Bearer KEY`` when that key may ingest (parsed as
    ninja's HttpBearer does)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    key = cached_api_key(token)
    if key is None or not key_allows(key, Scope.INGEST):
        return None
    return Principal(api_key=key)
