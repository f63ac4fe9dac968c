"""In headless Chromium: a marketing site on another origin carries the snippet and a form;
a visitor browses it anonymously, then fills in the form, and their earlier page views and
campaign touch show on the new contact's timeline."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from embudo.crm.models import Contact
from embudo.tracking import queries
from embudo.tracking.actions import create_form, create_site_key
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Site:
    """A tiny static website on 127.0.0.1, a different origin from Embudo's live server."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


def html(title: str, snippet: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><title>{title}</title>{snippet}</head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def test_form_submission_brings_the_anonymous_visits_to_the_timeline(
    live_server: Any, page: Any, site: Site, browser_login: Any
) -> None:
    key = create_site_key("Marketing site", [site.origin])
    form = create_form(
        {
            "name": "Request a demo",
            "fields": [
                {
                    "name": "email",
                    "label": "Email",
                    "type": "email",
                    "required": True,
                    "maps_to": "email",
                },
                {"name": "first_name", "label": "First name", "maps_to": "first_name"},
            ],
            "thank_you_message": "Thanks, we will call you",
            "allowed_origins": [site.origin],
        }
    )
    snippet = queries.snippet_code(key, live_server.url)
    site.pages["/"] = html("Home", snippet, '<a href="/pricing">Pricing</a>')
    site.pages["/pricing"] = html("Pricing", snippet, '<a href="/demo">Book a demo</a>')
    site.pages["/demo"] = html("Demo", snippet, queries.form_embed_code(form, live_server.url))

    page.goto(f"{site.origin}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring")
    page.get_by_role("link", name="Pricing").click()
    page.wait_for_url(re.compile(r"/pricing$"))
    page.get_by_role("link", name="Book a demo").click()
    page.wait_for_url(re.compile(r"/demo$"))
    page.wait_for_function("window.embudo && window.embudo.visitorId")
    page.get_by_label("Email").fill("lucia@example.com")
    page.get_by_label("First name").fill("Lucía")
    page.get_by_role("button", name="Send").click()
    message = page.locator("[data-embudo-message]")
    message.filter(has_text="Thanks, we will call you").wait_for()

    contact = Contact.objects.get(email="lucia@example.com")
    deadline = time.monotonic() + 10
    while contact.events.filter(type="page_view").count() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    views = list(contact.events.filter(type="page_view").values_list("url", flat=True))
    assert sorted(url.rsplit("/", 1)[-1].split("?")[0] for url in views) == [
        "",
        "demo",
        "pricing",
    ]
    assert contact.first_name == "Lucía"
    contact.refresh_from_db()
    assert (contact.original_source, contact.original_campaign) == ("newsletter", "spring")

    # And a marketer sees it all on the contact's page.
    browser_login(make_user("marketing"))
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    timeline = page.get_by_test_id("timeline").inner_text()
    assert timeline.count("page_view") == 3
    assert "form_submit" in timeline
    assert "Email" in timeline and "spring" in timeline  # the campaign touchpoint
