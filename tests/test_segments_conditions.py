"""The condition language: every operator on every type, and/or/not, behaviour with frozen time,
and the messages bad conditions get — on whichever database the suite runs on."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time

from embudo.crm import actions as crm
from embudo.crm.models import Contact
from embudo.segments.conditions import (
    ConditionError,
    compile_condition,
    compile_event_filter,
    describe_condition,
    validate_condition,
)
from embudo.tracking.actions import record_events
from embudo.tracking.models import Event
from tests.factories import make_company, make_contact, make_user

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def _events(email: str, *items: tuple[str, int, str]) -> None:
    """(type, days ago, url) events for the contact with ``email``."""
    record_events(
        [
            {
                "type": type_,
                "email": email,
                "url": url,
                "occurred_at": (NOW - dt.timedelta(days=ago)).isoformat(),
                "properties": {"amount": ago * 10, "plan": "pro" if ago % 2 else "free"},
            }
            for type_, ago, url in items
        ],
        source="api",
        now=NOW,
    )


@pytest.fixture
def people(db: Any) -> dict[str, Contact]:
    """Five contacts, each different on every field the table asks about."""
    crm.define_property("contact", "industry", "text")
    crm.define_property("contact", "budget", "number")
    crm.define_property("contact", "renewal", "date")
    crm.define_property("contact", "newsletter", "boolean")
    crm.define_property("contact", "tier", "choice", choices=["gold", "silver"])
    crm.define_property("company", "region", "text")
    crm.define_property("company", "revenue", "number")
    owner = make_user("sales", username="rita")
    big = make_company(
        name="Bigco",
        industry="Software",
        employees=500,
        country="ES",
        properties={"region": "EMEA", "revenue": 1_000_000},
    )
    small = make_company(
        name="Smallco",
        industry="Retail",
        employees=12,
        properties={"region": "LATAM", "revenue": 90_000},
    )
    with freeze_time(NOW - dt.timedelta(days=400)):
        ana = make_contact(
            first_name="Ana",
            email="ana@bigco.com",
            lifecycle_stage="lead",
            company_id=big.pk,
            job_title="CTO",
            owner_id=owner.pk,
            properties={
                "industry": "Software",
                "budget": 5000,
                "renewal": "2026-04-01",
                "newsletter": True,
                "tier": "gold",
            },
        )
    with freeze_time(NOW - dt.timedelta(days=20)):
        bob = make_contact(
            first_name="Bob",
            email="bob@smallco.com",
            lifecycle_stage="mql",
            company_id=small.pk,
            job_title="Buyer",
            lead_status="attempting",
            properties={
                "industry": "retail",
                "budget": 250.5,
                "renewal": "2025-12-31",
                "newsletter": False,
                "tier": "silver",
            },
        )
    with freeze_time(NOW - dt.timedelta(days=5)):
        cam = make_contact(
            first_name="Cam",
            email="cam@uni.edu",
            lifecycle_stage="subscriber",
            properties={"industry": "Education"},
        )
    with freeze_time(NOW - dt.timedelta(days=1)):
        dee = make_contact(
            first_name="Dee",
            email="dee@bigco.com",
            lifecycle_stage="customer",
            company_id=big.pk,
            properties={"budget": 0},
        )
        eve = make_contact(first_name="Eve", email=None, lifecycle_stage="lead")
    _events(
        "ana@bigco.com",
        ("page_view", 1, "https://x.io/pricing"),
        ("page_view", 3, "https://x.io/pricing?a"),
        ("page_view", 10, "https://x.io/PRICING"),
        ("page_view", 30, "https://x.io/pricing"),
        ("email_open", 100, ""),
    )
    _events(
        "bob@smallco.com",
        ("page_view", 2, "https://x.io/pricing"),
        ("page_view", 4, "https://x.io/blog"),
        ("email_open", 5, ""),
    )
    _events("dee@bigco.com", ("email_open", 60, ""), ("form_submit", 1, "https://x.io/demo"))
    return {c.first_name: c for c in (ana, bob, cam, dee, eve)}


def matching(condition: Any) -> set[str]:
    q = compile_condition(condition, now=NOW)
    return set(Contact.objects.filter(q).values_list("first_name", flat=True))


def f(field: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def did(type_: str, op: str = "gte", n: int = 1, days: int | None = None, **where: Any) -> Any:
    node: dict[str, Any] = {"event": {"type": type_}, "count": {"op": op, "value": n}}
    if where:
        node["event"]["where"] = [f(k, *v) for k, v in where.items()]
    if days:
        node["within_days"] = days
    return node


ALL = {"Ana", "Bob", "Cam", "Dee", "Eve"}

TABLE: list[tuple[str, Any, set[str]]] = [
    # choice built-ins
    ("stage eq", f("lifecycle_stage", "eq", "lead"), {"Ana", "Eve"}),
    ("stage neq", f("lifecycle_stage", "neq", "lead"), {"Bob", "Cam", "Dee"}),
    ("stage in", f("lifecycle_stage", "in", ["lead", "mql"]), {"Ana", "Bob", "Eve"}),
    ("stage not_in", f("lifecycle_stage", "not_in", ["lead", "mql"]), {"Cam", "Dee"}),
    ("lead_status set", f("lead_status", "is_set"), {"Bob"}),
    ("lead_status not set", f("lead_status", "is_not_set"), ALL - {"Bob"}),
    # text built-ins
    ("email eq ignores case", f("email", "eq", "ANA@bigco.com"), {"Ana"}),
    ("email contains", f("email", "contains", "BIGCO"), {"Ana", "Dee"}),
    ("email not_contains", f("email", "not_contains", "bigco"), {"Bob", "Cam", "Eve"}),
    ("email starts_with", f("email", "starts_with", "b"), {"Bob"}),
    ("email ends_with", f("email", "ends_with", ".edu"), {"Cam"}),
    ("email is_set", f("email", "is_set"), ALL - {"Eve"}),
    ("email is_not_set", f("email", "is_not_set"), {"Eve"}),
    ("job_title in", f("job_title", "in", ["cto", "Buyer"]), {"Ana", "Bob"}),
    ("job_title not_in", f("job_title", "not_in", ["cto"]), ALL - {"Ana"}),
    ("job_title neq", f("job_title", "neq", "CTO"), ALL - {"Ana"}),
    ("email_domain eq", f("email_domain", "eq", "bigco.com"), {"Ana", "Dee"}),
    ("email_domain in", f("email_domain", "in", ["smallco.com", "uni.edu"]), {"Bob", "Cam"}),
    ("email_domain neq", f("email_domain", "neq", "bigco.com"), {"Bob", "Cam", "Eve"}),
    ("email_domain ends_with", f("email_domain", "ends_with", ".edu"), {"Cam"}),
    ("owner eq", f("owner", "eq", "rita"), {"Ana"}),
    ("owner is_not_set", f("owner", "is_not_set"), ALL - {"Ana"}),
    # dates on columns (created_at: Ana 400 days ago, Bob 20, Cam 5, Dee and Eve 1)
    ("created in last 7 days", f("created_at", "in_last_days", 7), {"Cam", "Dee", "Eve"}),
    ("created more than 30 days ago", f("created_at", "more_than_days_ago", 30), {"Ana"}),
    ("created after", f("created_at", "gt", "2026-03-10"), {"Dee", "Eve"}),
    ("created on or after", f("created_at", "gte", "2026-03-10"), {"Cam", "Dee", "Eve"}),
    ("created before", f("created_at", "lt", "2026-03-10"), {"Ana", "Bob"}),
    ("created on or before", f("created_at", "lte", "2026-03-10"), {"Ana", "Bob", "Cam"}),
    ("created on", f("created_at", "eq", "2026-03-14"), {"Dee", "Eve"}),
    ("created between", f("created_at", "between", ["2026-02-01", "2026-03-10"]), {"Bob", "Cam"}),
    ("created set", f("created_at", "is_set"), ALL),
    # company built-ins (through the join; Cam and Eve have no company)
    ("company employees gte", f("company.employees", "gte", 50), {"Ana", "Dee"}),
    ("company employees gt", f("company.employees", "gt", 500), set()),
    ("company employees lt", f("company.employees", "lt", 500), {"Bob"}),
    ("company employees lte", f("company.employees", "lte", 500), {"Ana", "Bob", "Dee"}),
    ("company employees eq", f("company.employees", "eq", 12), {"Bob"}),
    ("company employees neq", f("company.employees", "neq", 12), {"Ana", "Cam", "Dee", "Eve"}),
    ("company employees between", f("company.employees", "between", [10, 100]), {"Bob"}),
    ("company employees in", f("company.employees", "in", [12, 7]), {"Bob"}),
    ("company employees is_set", f("company.employees", "is_set"), {"Ana", "Bob", "Dee"}),
    ("company employees is_not_set", f("company.employees", "is_not_set"), {"Cam", "Eve"}),
    ("company industry eq", f("company.industry", "eq", "software"), {"Ana", "Dee"}),
    ("company country not set", f("company.country", "is_not_set"), {"Bob", "Cam", "Eve"}),
    ("company name contains", f("company.name", "contains", "small"), {"Bob"}),
    # custom properties: text
    ("property text eq ignores case", f("property.industry", "eq", "RETAIL"), {"Bob"}),
    (
        "property text neq includes unset",
        f("property.industry", "neq", "retail"),
        {"Ana", "Cam", "Dee", "Eve"},
    ),
    ("property text in", f("property.industry", "in", ["software", "education"]), {"Ana", "Cam"}),
    (
        "property text not_in",
        f("property.industry", "not_in", ["software"]),
        {"Bob", "Cam", "Dee", "Eve"},
    ),
    ("property text contains", f("property.industry", "contains", "war"), {"Ana"}),
    ("property text not_contains", f("property.industry", "not_contains", "war"), ALL - {"Ana"}),
    ("property text starts_with", f("property.industry", "starts_with", "ed"), {"Cam"}),
    ("property text ends_with", f("property.industry", "ends_with", "AIL"), {"Bob"}),
    ("property text is_set", f("property.industry", "is_set"), {"Ana", "Bob", "Cam"}),
    ("property text is_not_set", f("property.industry", "is_not_set"), {"Dee", "Eve"}),
    # custom properties: number (compared as numbers, not text: 5000 > 250.5)
    ("property number gt", f("property.budget", "gt", 300), {"Ana"}),
    ("property number gte", f("property.budget", "gte", 250.5), {"Ana", "Bob"}),
    ("property number lt", f("property.budget", "lt", 1000), {"Bob", "Dee"}),
    ("property number lte", f("property.budget", "lte", 0), {"Dee"}),
    ("property number eq", f("property.budget", "eq", 5000), {"Ana"}),
    ("property number neq", f("property.budget", "neq", 5000), ALL - {"Ana"}),
    ("property number between", f("property.budget", "between", [100, 6000]), {"Ana", "Bob"}),
    ("property number in", f("property.budget", "in", [0, 5000]), {"Ana", "Dee"}),
    ("property number is_set", f("property.budget", "is_set"), {"Ana", "Bob", "Dee"}),
    ("property number is_not_set", f("property.budget", "is_not_set"), {"Cam", "Eve"}),
    # custom properties: date (stored as ISO text)
    ("property date gt", f("property.renewal", "gt", "2026-01-01"), {"Ana"}),
    ("property date lt", f("property.renewal", "lt", "2026-01-01"), {"Bob"}),
    ("property date eq", f("property.renewal", "eq", "2025-12-31"), {"Bob"}),
    (
        "property date between",
        f("property.renewal", "between", ["2025-01-01", "2025-12-31"]),
        {"Bob"},
    ),
    ("property date in last days", f("property.renewal", "in_last_days", 90), {"Ana", "Bob"}),
    ("property date more than days ago", f("property.renewal", "more_than_days_ago", 30), {"Bob"}),
    ("property date is_set", f("property.renewal", "is_set"), {"Ana", "Bob"}),
    # custom properties: boolean and choice
    ("property boolean true", f("property.newsletter", "eq", True), {"Ana"}),
    ("property boolean false", f("property.newsletter", "eq", False), {"Bob"}),
    ("property boolean not set", f("property.newsletter", "is_not_set"), {"Cam", "Dee", "Eve"}),
    ("property choice eq", f("property.tier", "eq", "gold"), {"Ana"}),
    ("property choice not_in", f("property.tier", "not_in", ["gold"]), ALL - {"Ana"}),
    # company custom properties
    ("company property text", f("company.property.region", "eq", "emea"), {"Ana", "Dee"}),
    ("company property number", f("company.property.revenue", "gte", 100_000), {"Ana", "Dee"}),
    ("company property not set", f("company.property.region", "is_not_set"), {"Cam", "Eve"}),
    # and / or / not
    ("all", {"all": [f("lifecycle_stage", "eq", "lead"), f("email", "is_set")]}, {"Ana"}),
    (
        "any",
        {"any": [f("lifecycle_stage", "eq", "mql"), f("email_domain", "eq", "uni.edu")]},
        {"Bob", "Cam"},
    ),
    ("not", {"not": f("lifecycle_stage", "in", ["lead", "mql"])}, {"Cam", "Dee"}),
    (
        "not over a missing property",
        {"not": f("property.industry", "eq", "software")},
        ALL - {"Ana"},
    ),
    (
        "not over a missing company",
        {"not": f("company.employees", "gte", 100)},
        {"Bob", "Cam", "Eve"},
    ),
    (
        "nested",
        {
            "all": [
                {
                    "any": [
                        f("lifecycle_stage", "eq", "lead"),
                        f("lifecycle_stage", "eq", "customer"),
                    ]
                },
                {"not": f("email", "is_not_set")},
            ]
        },
        {"Ana", "Dee"},
    ),
    ("empty matches everyone", {}, ALL),
    ("empty all matches everyone", {"all": []}, ALL),
    ("empty any matches no one", {"any": []}, set()),
    # behaviour (time frozen at NOW)
    ("did page_view", did("page_view"), {"Ana", "Bob"}),
    (
        "pricing at least 3 times in 14 days",
        did("page_view", "gte", 3, 14, url=("contains", "/pricing")),
        {"Ana"},
    ),
    (
        "pricing at least 2 times in 14 days, either",
        did("page_view", "gte", 1, 14, url=("contains", "/pricing")),
        {"Ana", "Bob"},
    ),
    ("pricing exactly 1 time", did("page_view", "eq", 1, 14, url=("contains", "pricing")), {"Bob"}),
    (
        "pricing more than 3 times ever",
        did("page_view", "gt", 3, url=("contains", "pricing")),
        {"Ana"},
    ),
    ("no email open in 90 days", did("email_open", "eq", 0, 90), {"Ana", "Cam", "Eve"}),
    ("at most one email open in 90 days", did("email_open", "lte", 1, 90), ALL),
    ("fewer than 2 page views", did("page_view", "lt", 2), {"Cam", "Dee", "Eve"}),
    ("page views not exactly 2", did("page_view", "neq", 2), ALL - {"Bob"}),
    ("some email open", did("email_open", "neq", 0), {"Ana", "Bob", "Dee"}),
    (
        "event property number",
        did("page_view", "gte", 1, None, **{"property.amount": ("gte", 100)}),
        {"Ana"},
    ),
    (
        "event property text",
        did("page_view", "gte", 2, None, **{"property.plan": ("eq", "pro")}),
        {"Ana"},
    ),
    (
        "any event type in a list",
        {"event": {"type": ["form_submit", "email_open"]}, "count": {"op": "gte", "value": 2}},
        {"Dee"},
    ),
    (
        "behaviour and stage",
        {
            "all": [
                f("lifecycle_stage", "in", ["lead", "mql"]),
                did("page_view", "gte", 3, 14, url=("contains", "/pricing")),
            ]
        },
        {"Ana"},
    ),
    ("not behaviour", {"not": did("page_view")}, {"Cam", "Dee", "Eve"}),
]


@pytest.mark.parametrize(("name", "condition", "expected"), TABLE, ids=[r[0] for r in TABLE])
def test_condition_matches_exactly_the_expected_contacts(
    people: dict[str, Contact], name: str, condition: Any, expected: set[str]
) -> None:
    assert matching(condition) == expected


def test_condition_given_as_json_text_matches_like_the_dict(people: dict[str, Contact]) -> None:
    assert matching('{"field": "lifecycle_stage", "op": "eq", "value": "mql"}') == {"Bob"}


def test_persona_field_matches_the_stored_assignment(people: dict[str, Contact]) -> None:
    from embudo.segments.models import Persona, PersonaAssignment

    persona = Persona.objects.create(name="Tech buyer", conditions={})
    PersonaAssignment.objects.create(contact=people["Ana"], persona=persona)
    assert matching(f("persona", "eq", "Tech buyer")) == {"Ana"}
    assert matching(f("persona", "is_not_set")) == ALL - {"Ana"}


def test_event_filter_selects_events_in_the_window(people: dict[str, Contact]) -> None:
    q = compile_event_filter(
        {"type": "page_view", "where": [f("url", "contains", "pricing")], "within_days": 7},
        now=NOW,
    )
    assert Event.objects.filter(q).count() == 3  # Ana's 1 and 3 days ago, Bob's 2 days ago


BAD: list[tuple[Any, str]] = [
    (
        {"all": [f("email", "is_set"), f("property.foo", "eq", "x")]},
        "all[1].field: unknown field 'property.foo'",
    ),
    ({"any": [f("email", "gt", "x")]}, "any[0].op: 'gt' is not valid for a text field"),
    ('{"all": [', "malformed JSON"),
    (f("lifecycle_stage", "eq", "prospect"), "value: 'prospect' is not one of: subscriber"),
    (f("company.employees", "gte", "fifty"), "value: expected a number, got text"),
    (f("created_at", "gt", "yesterday"), "value: expected a date as YYYY-MM-DD"),
    (f("lifecycle_stage", "in", []), "value: expected a non-empty list"),
    (f("email", "frobnicate", "x"), "op: unknown operator 'frobnicate'"),
    ({"not": {"field": "email"}}, "not.op: missing operator"),
    ({"all": {"field": "email"}}, "all: expected a list, got an object"),
    ({"both": []}, "expected one of all, any, not, field or event, got both"),
    ({"field": "email", "op": "is_set", "extra": 1}, "extra: unexpected key here"),
    (
        {"all": [did("page_view", "gte", 3, None, urll=("contains", "x"))]},
        "all[0].event.where[0].field: unknown event field 'urll'",
    ),
    (
        {"event": {"type": "page_view"}, "count": {"op": "most", "value": 3}},
        "count.op: expected one of",
    ),
    ({"event": {"type": "page_view"}, "within_days": -1}, "within_days: expected a whole number"),
    (f("company.employees", "between", [100, 10]), "value: the first value is greater"),
    (
        {"event": {"type": "x", "where": [f("property.a'b", "eq", "x")]}},
        'event.where[0].field: unknown event field "property.a\'b"',
    ),
    ([1, 2], "expected an object, got a list"),
]


@pytest.mark.parametrize(("condition", "message"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_condition_is_refused_naming_the_wrong_part(
    db: Any, condition: Any, message: str
) -> None:
    with pytest.raises(ConditionError) as refused:
        validate_condition(condition)
    assert message in str(refused.value)


def test_persona_cannot_be_used_where_it_is_refused(db: Any) -> None:
    with pytest.raises(ConditionError, match=r"^any\[0\]\.field: 'persona' cannot be used here"):
        validate_condition({"any": [f("persona", "is_set")]}, allow=lambda name: name != "persona")


DESCRIBED: list[tuple[Any, str]] = [
    (
        {
            "all": [
                f("lifecycle_stage", "in", ["lead", "mql"]),
                did("page_view", "gte", 3, 14, url=("contains", "/pricing")),
            ]
        },
        'stage in (lead, mql) and did page_view where url contains "/pricing" at least 3 times '
        "in the last 14 days",
    ),
    (did("email_open", "eq", 0, 90), "did not do email_open in the last 90 days"),
    (
        {"any": [f("company.employees", "gte", 50), {"not": f("email", "contains", "gmail")}]},
        'company.employees >= 50 or not (email contains "gmail")',
    ),
    (
        {
            "all": [
                f("created_at", "in_last_days", 30),
                {"any": [f("lead_status", "is_set"), f("created_at", "lt", "2026-01-01")]},
            ]
        },
        "created_at in the last 30 days and (lead_status is set or created_at before 2026-01-01)",
    ),
    ({}, "everyone"),
]


@pytest.mark.parametrize(("condition", "text"), DESCRIBED, ids=[d[1][:40] for d in DESCRIBED])
def test_condition_is_described_in_readable_text(db: Any, condition: Any, text: str) -> None:
    assert describe_condition(condition) == text


def test_condition_within_some_contacts_asks_only_about_them(people: dict[str, Contact]) -> None:
    scope = [people["Ana"].pk, people["Bob"].pk, people["Dee"].pk]
    quiet = did("email_open", "eq", 0, 90)
    pricing = did("page_view", "gte", 3, 14, url=("contains", "/pricing"))

    def within(condition: Any) -> set[str]:
        q = compile_condition(condition, now=NOW, contact_ids=scope)
        return set(Contact.objects.filter(q).values_list("first_name", flat=True))

    assert within(quiet) == {"Ana"}  # Cam and Eve never opened either, but were not asked about
    assert within(pricing) == {"Ana"}
    assert within({"not": pricing}) == {"Bob", "Dee"}
    assert within({}) == {"Ana", "Bob", "Dee"}
