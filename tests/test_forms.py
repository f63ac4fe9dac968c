"""Forms: definitions, public submissions from allowed sites, spam protection, stitching."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from embudo.crm.actions import define_property
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from embudo.tracking import views
from embudo.tracking.actions import create_form, record_events
from embudo.tracking.models import Event, Form
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

SITE = "https://www.acme.test"


@pytest.fixture
def form() -> Form:
    define_property("contact", "company_size", "text")
    return create_form(
        {
            "name": "Demo request",
            "fields": [
                {"name": "email", "type": "email", "required": True, "maps_to": "email"},
                {"name": "first_name", "maps_to": "first_name"},
                {
                    "name": "size",
                    "type": "select",
                    "choices": ["1-10", "11-50"],
                    "maps_to": "company_size",
                },
                {"name": "message", "type": "textarea"},
            ],
            "consent_text": "I agree to be contacted",
            "consent_required": True,
            "thank_you_message": "Thanks, we'll be in touch",
            "allowed_origins": [SITE],
        }
    )


def submit(
    client: Client, form: Form, data: dict[str, str], origin: str = SITE, **extra: Any
) -> Any:
    return client.post(f"/f/{form.slug}", data, HTTP_ORIGIN=origin, **extra)


def test_submission_creates_the_contact_and_records_form_submit(client: Client, form: Form) -> None:
    response = submit(
        client,
        form,
        {
            "email": "Rita@Example.com",
            "first_name": "Rita",
            "size": "11-50",
            "message": "Call me",
            "_consent": "yes",
        },
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    assert response.json() == {"ok": True, "message": "Thanks, we'll be in touch", "redirect": ""}
    assert response["Access-Control-Allow-Origin"] == SITE
    contact = Contact.objects.get(email="rita@example.com")
    assert contact.first_name == "Rita"
    assert contact.properties == {"company_size": "11-50"}
    event = Event.objects.get(type="form_submit")
    assert event.contact_id == contact.pk and event.source == "form"
    assert event.properties["fields"] == {"message": "Call me"}
    assert event.properties["consent"] is True


def test_submission_stitches_the_visitors_earlier_visits(client: Client, form: Form) -> None:
    record_events(
        [
            {
                "type": "page_view",
                "visitor_id": "v-rita",
                "url": SITE + "/?utm_source=newsletter&utm_medium=email",
            },
            {"type": "page_view", "visitor_id": "v-rita", "url": SITE + "/pricing"},
        ],
        source="snippet",
    )

    submit(client, form, {"email": "rita@example.com", "_consent": "yes", "_vid": "v-rita"})

    contact = Contact.objects.get(email="rita@example.com")
    assert contact.events.filter(type="page_view").count() == 2
    assert contact.original_source == "newsletter"


def test_existing_contact_is_updated_not_duplicated(client: Client, form: Form) -> None:
    contact = make_contact(email="sam@example.com", first_name="")

    submit(client, form, {"email": "sam@example.com", "first_name": "Sam", "_consent": "yes"})

    assert Contact.objects.filter(email="sam@example.com").count() == 1
    contact.refresh_from_db()
    assert contact.first_name == "Sam"


def test_missing_fields_and_consent_are_reported(client: Client, form: Form) -> None:
    response = submit(
        client, form, {"email": "not-an-email", "size": "5000+"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "not a valid email" in errors["email"][0]
    assert "not one of the choices" in errors["size"][0]
    assert "consent" in errors["_consent"][0]
    assert Contact.objects.count() == 0


def test_html_post_without_javascript_shows_the_thank_you_page(client: Client, form: Form) -> None:
    response = submit(client, form, {"email": "html@example.com", "_consent": "yes"})

    assert response.status_code == 200
    assert "Thanks, we&#x27;ll be in touch" in response.content.decode()


def test_honeypot_submission_is_answered_but_dropped(client: Client, form: Form) -> None:
    response = submit(
        client,
        form,
        {"email": "bot@spam.test", "_consent": "yes", "_hp": "x"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    assert Contact.objects.count() == 0
    assert Event.objects.count() == 0


def test_disallowed_origin_is_refused(client: Client, form: Form) -> None:
    response = submit(
        client,
        form,
        {"email": "x@example.com", "_consent": "yes"},
        origin="https://evil.test",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 403
    assert "evil.test" in response.json()["errors"]["form"][0]
    assert Contact.objects.count() == 0


def test_a_flood_from_one_address_is_rate_limited(client: Client, form: Form) -> None:
    limit = views.FORM_LIMIT[0]
    statuses = [
        submit(
            client,
            form,
            {"email": f"p{n}@example.com", "_consent": "yes"},
            HTTP_ACCEPT="application/json",
        ).status_code
        for n in range(limit + 3)
    ]

    assert statuses[:limit] == [200] * limit
    assert statuses[limit:] == [429, 429, 429]
    assert Contact.objects.count() == limit
    other = submit(
        client, form, {"email": "other@example.com", "_consent": "yes"}, REMOTE_ADDR="10.9.9.9"
    )
    assert other.status_code == 200


def test_closed_or_unknown_form_is_not_found(client: Client, form: Form) -> None:
    form.is_active = False
    form.save()

    assert submit(client, form, {"email": "x@example.com"}).status_code == 404
    assert client.post("/f/no-such-form", {"email": "x@example.com"}).status_code == 404


def test_hosted_form_page_posts_from_embudo_itself(client: Client, form: Form) -> None:
    page = client.get(f"/f/{form.slug}")
    assert page.status_code == 200 and 'name="_hp"' in page.content.decode()

    response = submit(
        client, form, {"email": "own@example.com", "_consent": "yes"}, origin="http://testserver"
    )

    assert response.status_code == 200
    assert Contact.objects.filter(email="own@example.com").exists()


def test_form_definition_must_map_an_email_and_use_known_targets() -> None:
    with pytest.raises(ValidationFailed) as failed:
        create_form({"name": "Bad", "fields": [{"name": "x", "maps_to": "shoe_size"}]})

    assert "neither a contact field" in failed.value.errors["fields.0"][0]
    with pytest.raises(ValidationFailed) as failed:
        create_form({"name": "No email", "fields": [{"name": "first_name"}]})
    assert "email" in failed.value.errors["fields"][0]
