from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import freezegun
import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.servers.basehttp import WSGIServer
from django.test import Client
from django.test.testcases import LiveServerThread
from django.utils import translation

from embudo import caches, pipeline
from tests.factories import make_user
from tests.mailroom import CountingSMTP


def pytest_configure(config: pytest.Config) -> None:
    # Hashing a password the production way costs most of a second, and most tests make users;
    # the tests of logging in still check passwords, with this fast hasher. The embudo processes
    # the tests start (embudo createuser, serve, demo) keep the product settings.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # pytest times each test with its own clock; frozen, it would report a test's setup as
    # taking from now until the frozen moment.
    freezegun.configure(extend_ignore_list=["_pytest.timing"])


class _SerialWSGIServer(WSGIServer):
    """A live server that answers one request at a time (closing each connection)."""

    def __init__(self, *args: Any, connections_override: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _serial_live_server_on_sqlite() -> Iterator[None]:
    """On SQLite the test database lives in memory and the live server's request threads share
    the test's one connection; two requests at once (a tracking beacon and a form post, each
    running the after-commit hooks) would interleave their transactions on it. Served one at a
    time they cannot. PostgreSQL gives each thread its own connection and keeps the threads."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        yield
        return
    threaded = LiveServerThread.server_class
    LiveServerThread.server_class = _SerialWSGIServer
    yield
    LiveServerThread.server_class = threaded


@pytest.fixture(autouse=True)
def _no_cache_carried_over() -> None:
    """Start every test with every per-process cache empty: a site key, the channel rules, a
    scoring plan or a kept report left in memory by one test must not answer the next. Django's
    cache too, which in tests is this process's memory (the rate limits count in it)."""
    caches.clear_all()
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Start every test in the default language: a request in Spanish activates Spanish for the
    thread, and without this the next test's messages would come out in Spanish."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture
def only_reactions(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Keep only the named reactions of the pipeline (plus any given), for a test of one app's:
    ``only_reactions("rescore", also=[spy])``."""

    def keep(*names: str, also: Sequence[pipeline.Reaction] = ()) -> None:
        unknown = set(names) - {reaction.name for reaction in pipeline.REACTIONS}
        assert not unknown, f"no such reaction: {unknown}"
        chosen = tuple(r for r in pipeline.REACTIONS if r.name in names) + tuple(also)
        monkeypatch.setattr(pipeline, "REACTIONS", chosen)

    return keep


@pytest.fixture
def admin_user(db: Any) -> Any:
    return make_user("admin")


@pytest.fixture
def logged_in(client: Client) -> Any:
    """Log a fresh user of the given role into the test client: ``logged_in("sales")``. The
    session is opened directly (``force_login``); the login form has tests of its own."""

    def login(role: str = "admin") -> Any:
        user = make_user(role)
        client.force_login(user)
        return user

    return login


# Playwright's sync API keeps an event loop running in the test thread; Django's ORM calls made
# from that thread are still synchronous, so its async-safety guard does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Any:
    """Headless Chromium (the system's), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def browser_login(page: Any, live_server: Any) -> Callable[[Any], None]:
    """Log ``user`` into the browser page without the login form: the session Django's test
    client opens for them becomes the browser's session cookie. Tests of logging in use the form."""

    def login(user: Any) -> None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": session.key, "value": session.value, "url": live_server.url}]
        )

    return login


@pytest.fixture
def smtp(settings: Any) -> Iterator[CountingSMTP]:
    """A real SMTP server on 127.0.0.1 that this test's mail goes to through Django's SMTP
    backend: it keeps each message and envelope and counts what each recipient got."""
    with CountingSMTP() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        yield server
