"""Stand-ins for the consent pages' public links (unsubscribe, preferences, double opt-in), so
the links a message carries can be made and checked; the consent pages replace these views.
They check the signature (a forged link is 404) and say the page is not available."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from embudo.automation import links


def _unavailable() -> HttpResponse:
    return HttpResponse(_("This page is not available yet."), status=503, content_type="text/plain")


@csrf_exempt
def unsubscribe(request: HttpRequest, delivery: int, signature: str) -> HttpResponse:
    try:
        links.check_unsubscribe(delivery, signature)
    except links.BadLink:
        raise Http404("no such link") from None
    return _unavailable()


def preferences(request: HttpRequest, contact: int, signature: str) -> HttpResponse:
    try:
        links.check_preferences(contact, signature)
    except links.BadLink:
        raise Http404("no such link") from None
    return _unavailable()


def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        links.read_confirmation(token)
    except links.BadLink:
        raise Http404("no such link") from None
    return _unavailable()
