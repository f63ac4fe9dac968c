"""The demo company: deterministic, loaded once, with a believable and consistent history."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import ProtectedError
from django.test import Client

from embudo.accounts.roles import role_of
from embudo.crm.models import (
    FUNNEL_ORDER,
    Activity,
    ActivityKind,
    Company,
    Contact,
    LifecycleTransition,
    PropertyDefinition,
)
from embudo.crm.properties import coerce
from embudo.demo.seed import DEMO_PASSWORD, DEMO_USERS, DemoRefused, seed
from tests.embudo_processes import (
    child_pids,
    embudo_environment,
    free_port,
    is_running,
    start_embudo,
    stop,
    wait_until_serving,
)
from tests.factories import make_contact

AS_OF = dt.date(2025, 6, 2)
ANCHOR = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)


def wipe() -> None:
    """Remove every row of Embudo's own tables and every user: the database is as a fresh one.

    Covers what later demo steps (events, deals, goals…) add without naming their tables, and
    the background tasks the demo queued (later tests count what their own actions queue).
    """
    models = [
        m for m in apps.get_models() if m.__module__.startswith(("embudo.", "django_tasks_db."))
    ]
    models.append(get_user_model())
    for _attempt in range(len(models)):
        protected = []
        for model in models:
            try:
                model._default_manager.all().delete()
            except ProtectedError:
                protected.append(model)  # something still points at it: after the others
        if not protected:
            return
        models = protected
    raise AssertionError(f"cannot empty {models}")


def fingerprint(anchor: dt.datetime | None = None) -> str:
    """A digest of everything the demo wrote, by natural keys (emails, usernames, names) rather
    than ids. With ``anchor``, moments are taken as seconds before it, so a demo loaded on
    another day compares equal when only its calendar moved."""

    def when(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return (anchor - value).total_seconds() if anchor else value.isoformat()
        return value

    digest = hashlib.sha256()

    def add(rows: Any) -> None:
        for row in rows:
            digest.update(json.dumps([when(v) for v in row], sort_keys=True, default=str).encode())

    users = get_user_model().objects.order_by("username")
    add(
        (u.username, u.email, u.first_name, u.last_name, u.is_superuser, role_of(u), u.date_joined)
        for u in users
    )
    add(
        PropertyDefinition.objects.order_by("object_type", "name").values_list(
            "object_type", "name", "label", "type", "choices", "created_at"
        )
    )
    add(
        Company.objects.order_by("name").values_list(
            "name", "domain", "industry", "employees", "country", "city", "owner__username",
            "properties", "created_at", "updated_at",
        )
    )  # fmt: skip
    add(
        Contact.objects.order_by("email").values_list(
            "email", "first_name", "last_name", "phone", "job_title", "company__name",
            "owner__username", "lifecycle_stage", "lifecycle_stage_changed_at", "lead_status",
            "original_source", "original_medium", "original_campaign", "properties",
            "created_at", "updated_at",
        )
    )  # fmt: skip
    add(
        LifecycleTransition.objects.order_by("contact__email", "changed_at", "id").values_list(
            "contact__email", "from_stage", "to_stage", "changed_at", "cause",
            "actor__username", "note",
        )
    )  # fmt: skip
    add(
        Activity.objects.order_by("contact__email", "occurred_at", "id").values_list(
            "contact__email", "kind", "subject", "body", "occurred_at", "due_at", "done",
            "actor__username", "created_at", "updated_at",
        )
    )  # fmt: skip
    return digest.hexdigest()


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """The demo loaded once for this module (it takes seconds); yields its fingerprint."""
    with django_db_blocker.unblock():
        report = seed(as_of=AS_OF)
        assert report.loaded
        yield fingerprint()
        wipe()


# -- loading ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seeding_again_changes_nothing(demo: str) -> None:
    report = seed(as_of=AS_OF)
    assert report.loaded is False
    assert fingerprint() == demo


@pytest.mark.django_db
def test_a_fresh_database_gets_the_very_same_demo_and_another_day_the_same_shifted(
    demo: str,
) -> None:
    relative = fingerprint(ANCHOR)
    wipe()
    assert seed(as_of=AS_OF).loaded
    assert fingerprint() == demo

    wipe()
    later = dt.date(2025, 11, 19)
    assert seed(as_of=later).loaded
    assert fingerprint() != demo  # the dates moved…
    assert fingerprint(dt.datetime.combine(later, dt.time(), tzinfo=dt.UTC)) == relative  # …only


@pytest.mark.django_db
def test_the_demo_is_not_loaded_over_other_data() -> None:
    wipe()  # in case this module's demo is loaded (this test's transaction is rolled back)
    make_contact(email="real.customer@example.com")
    with pytest.raises(DemoRefused, match="already holds 1 contact"):
        seed(as_of=AS_OF)
    assert Contact.objects.count() == 1
    assert not Company.objects.exists()


# -- what it contains ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_demo_user_logs_in_with_the_demo_password_in_their_role(demo: str) -> None:
    for person in DEMO_USERS:
        client = Client()
        assert client.login(username=person.username, password=DEMO_PASSWORD), person.username
        assert role_of(get_user_model().objects.get(username=person.username)) == person.role
    roles = Counter(person.role for person in DEMO_USERS)
    assert roles == {"admin": 1, "marketing": 2, "sales": 6, "sales_manager": 1}
    assert Group.objects.filter(name="sales").get().user_set.count() == 6


@pytest.mark.django_db
def test_a_b2b_company_of_realistic_size_and_spread(demo: str) -> None:
    assert Contact.objects.count() == 5_000
    assert Company.objects.count() == 800
    assert 13_500 <= Activity.objects.count() <= 17_000
    assert set(Activity.objects.values_list("kind", flat=True)) == set(ActivityKind.values)
    countries = Counter(Company.objects.values_list("country", flat=True))
    assert countries["Spain"] > 150
    latin_america = {"Mexico", "Colombia", "Argentina", "Chile", "Peru"}
    assert latin_america <= set(countries) and sum(countries[c] for c in latin_america) > 200
    assert len(set(Company.objects.values_list("industry", flat=True))) >= 10
    sizes = [n or 0 for n in Company.objects.values_list("employees", flat=True)]
    assert min(sizes) < 20 and max(sizes) > 1000
    names = set(Contact.objects.values_list("last_name", flat=True))
    assert any("ñ" in n or "á" in n or "é" in n for n in names) and "Smith" in names
    assert len(set(Contact.objects.values_list("original_source", flat=True))) >= 8
    # every address is lower-case, unique and at the company's domain (or a free-mail one)
    for email, domain in Contact.objects.values_list("email", "company__domain"):
        assert email is not None and email == email.lower() and "@" in email
        assert domain is None or email.endswith("@" + domain)


@pytest.mark.django_db
def test_custom_property_values_fit_their_definitions(demo: str) -> None:
    definitions = {d.name: d for d in PropertyDefinition.objects.all()}
    assert set(definitions) == {"plan_interest", "newsletter", "seats"}
    seen: Counter[str] = Counter()
    for properties in Contact.objects.values_list("properties", flat=True):
        for name, value in properties.items():
            definition = definitions[name]
            assert coerce(value, definition.type, definition.choices) == value
            seen[name] += 1
    assert seen["plan_interest"] > 1000 and seen["newsletter"] > 3000 and seen["seats"] > 300


@pytest.mark.django_db
def test_each_contacts_history_leads_to_its_current_stage(demo: str) -> None:
    contacts = {
        c.pk: c
        for c in Contact.objects.only(
            "lifecycle_stage", "lifecycle_stage_changed_at", "created_at", "updated_at"
        )
    }
    history: dict[int, list[LifecycleTransition]] = defaultdict(list)
    for move in LifecycleTransition.objects.order_by("contact_id", "changed_at", "id"):
        history[move.contact_id].append(move)
    assert set(history) == set(contacts)
    for pk, moves in history.items():
        contact = contacts[pk]
        assert moves[0].from_stage == "" and moves[0].changed_at == contact.created_at
        for before, after in itertools.pairwise(moves):
            assert after.from_stage == before.to_stage, pk
            assert after.changed_at > before.changed_at, pk
        assert moves[-1].to_stage == contact.lifecycle_stage, pk
        assert moves[-1].changed_at == contact.lifecycle_stage_changed_at, pk
        assert contact.updated_at >= contact.lifecycle_stage_changed_at
        assert moves[-1].changed_at < ANCHOR


@pytest.mark.django_db
def test_conversion_between_stages_is_plausible(demo: str) -> None:
    entered: dict[str, set[int]] = defaultdict(set)
    moved: Counter[tuple[str, str]] = Counter()
    reached: dict[tuple[str, str], set[int]] = defaultdict(set)
    for contact_id, source, target in LifecycleTransition.objects.values_list(
        "contact_id", "from_stage", "to_stage"
    ):
        entered[target].add(contact_id)
        reached[(source, target)].add(contact_id)
        moved[(source, target)] += 1

    def rate(source: str, target: str) -> float:
        return len(reached[(source, target)]) / len(entered[source])

    assert 0.50 <= rate("subscriber", "lead") <= 0.70
    assert 0.28 <= rate("lead", "mql") <= 0.42
    assert 0.45 <= rate("mql", "sql") <= 0.65
    assert 0.40 <= rate("sql", "opportunity") <= 0.60
    assert 0.22 <= rate("opportunity", "customer") <= 0.40
    recycled = sum(moved[(s, "lead")] for s in ("mql", "sql", "opportunity"))
    disqualified = sum(n for (_s, t), n in moved.items() if t == "disqualified")
    assert 150 <= recycled <= 600 and 200 <= disqualified <= 600
    # no contact skips a funnel stage on the way up
    for (source, target), count in moved.items():
        if source in FUNNEL_ORDER and target in FUNNEL_ORDER:
            up = FUNNEL_ORDER.index(target) - FUNNEL_ORDER.index(source)
            assert up <= 1, (source, target, count)


@pytest.mark.django_db
def test_contacts_from_mql_on_have_a_sales_rep_of_their_territory(demo: str) -> None:
    reps = {p.username: p.region for p in DEMO_USERS if p.role == "sales"}
    region = {
        "Spain": "iberia", "United States": "english", "United Kingdom": "english",
        "Ireland": "english",
    }  # fmt: skip
    ever_mql = set(
        LifecycleTransition.objects.filter(to_stage="mql").values_list("contact_id", flat=True)
    )
    rows = Contact.objects.values_list("pk", "owner__username", "company__country")
    for pk, owner, country in rows:
        if pk in ever_mql:
            assert owner in reps, pk
            assert country is None or reps[owner] == region.get(country, "latam"), pk
        else:
            assert owner is None, pk
    # sales activity on a contact is its owner's and comes after the (first) handoff
    handoff = dict(  # newest first, so the earliest handoff is the one kept
        LifecycleTransition.objects.filter(to_stage="mql")
        .order_by("-changed_at")
        .values_list("contact_id", "changed_at")
    )
    owned = Activity.objects.filter(actor__username__in=reps).values_list(
        "contact_id", "contact__owner__username", "actor__username", "occurred_at"
    )
    for contact_id, owner, actor, occurred_at in owned:
        assert actor == owner, contact_id
        assert occurred_at >= handoff[contact_id], contact_id


# -- `embudo demo` as a process -----------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def log_in(base: str, username: str, password: str) -> tuple[int, str]:
    """Post the login form like a browser; returns the status and where it redirects."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect()
    )
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    try:
        response = opener.open(f"{base}/login/", data=form, timeout=10)
        return response.status, ""
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("Location", "")


def test_embudo_demo_serves_the_seeded_company_and_stops_on_sigterm(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "demo") as env:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "demo.log"
        demo_process = start_embudo(env, "demo", "--port", str(port), log=log)
        try:
            wait_until_serving(f"{base}/login/", demo_process, log, timeout=240)
            output = log.read_text()
            assert f"admin / {DEMO_PASSWORD}" in output
            assert "javier, carmen, diego, valentina, james, emily" in output
            assert log_in(base, "admin", DEMO_PASSWORD) == (302, "/")
            assert log_in(base, "admin", "wrong-password")[0] == 200  # the form again
            children = child_pids(demo_process.pid)
            assert len(children) == 2  # the server and the worker
        finally:
            code = stop(demo_process)
        assert code == 0, log.read_text()
        assert not [pid for pid in children if is_running(pid)]
        assert "Embudo demo stopped." in log.read_text()
