"""The public links every message carries back to Embudo: the open pixel (``/e/o/…``) and the
tracked clicks (``/e/c/…``). A link whose signature does not match is answered 404, as one that
never existed."""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from embudo.automation import engagement, links
from embudo.automation.models import Delivery

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _hit(request: HttpRequest) -> engagement.Hit:
    return engagement.Hit(
        method=request.method or "GET",
        user_agent=request.headers.get("User-Agent", ""),
        ip_address=request.META.get("REMOTE_ADDR", ""),
    )


def _delivery(delivery: int) -> Delivery:
    found = (
        Delivery.objects.select_related(
            "version", "version__template", "contact", "contact__company", "contact__owner"
        )
        .filter(pk=delivery)
        .first()
    )
    if found is None:
        raise Http404("no such message")
    return found


@never_cache
@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, delivery: int, signature: str) -> HttpResponse:
    try:
        links.check_open(delivery, signature)
    except links.BadLink:
        raise Http404("no such message") from None
    engagement.record_open(_delivery(delivery), _hit(request))
    return HttpResponse(GIF, content_type="image/gif")


@never_cache
@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, delivery: int, link: int, signature: str) -> HttpResponse:
    try:
        links.check_click(delivery, link, signature)
    except links.BadLink:
        raise Http404("no such link") from None
    found = _delivery(delivery)
    url = engagement.click_destination(found, link)
    if not url:
        raise Http404("no such link")
    engagement.record_click(found, link, url, _hit(request))
    return HttpResponseRedirect(url)
