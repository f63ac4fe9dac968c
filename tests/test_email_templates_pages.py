"""The template pages and API: write a template (English and Spanish), see it refused with
the line when it does not render, keep every version, preview as any contact, send a test to a
real mail server, and keep the brand."""

from __future__ import annotations

from typing import Any

import pytest

from embudo.automation import links, rendering
from embudo.automation.models import Brand, EmailTemplate, TemplateVersion
from embudo.crm.models import Contact
from tests.email_fixtures import BODY_ES, make_delivery, make_template, newsletter
from tests.embudo_processes import free_port
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def _form(**values: str) -> dict[str, str]:
    data = {
        "name": "Welcome",
        "description": "",
        "subscription_type": str(newsletter().pk),
        "subject_en": 'Welcome {{ contact.first_name|default:"there" }}',
        "preheader_en": "",
        "body_en": "<p>Hello</p>",
        "subject_es": "",
        "preheader_es": "",
        "body_es": "",
    }
    data.update(values)
    return data


def test_marketing_writes_a_template_in_two_languages(client, logged_in):
    logged_in("marketing")
    response = client.post(
        "/email/templates/new/",
        _form(subject_es="Bienvenido {{ contact.first_name }}", body_es=BODY_ES),
    )
    assert response.status_code == 302
    template = EmailTemplate.objects.get(name="Welcome")
    assert set(template.current.compiled) == {"en", "es"}
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Bienvenido {{ contact.first_name }}" in page.content.decode()
    listing = client.get("/email/templates/").content.decode()
    assert "Welcome" in listing


def test_a_template_that_does_not_render_is_refused_with_the_line(client, logged_in):
    logged_in("marketing")
    response = client.post(
        "/email/templates/new/", _form(body_en="<p>Hi</p>\n<p>{{ contact.nickname }}</p>")
    )
    assert response.status_code == 422
    assert "line 2: unknown field contact.nickname" in response.content.decode()
    assert not EmailTemplate.objects.exists()
    # what was typed is still there to fix
    assert "{{ contact.nickname }}" in response.content.decode()


def test_saving_adds_a_version_and_old_versions_can_be_read(client, logged_in):
    logged_in("marketing")
    template = make_template()
    response = client.post(f"/email/templates/{template.pk}/", _form(body_en="<p>Second</p>"))
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.current.number == 2
    old = client.get(f"/email/templates/{template.pk}/versions/1/")
    assert old.status_code == 200
    page = old.content.decode()
    assert "Hi there" in page
    # the message is shown in a sandboxed frame: its HTML escaped into the attribute
    assert 'srcdoc="&lt;!DOCTYPE html&gt;' in page
    assert client.get(f"/email/templates/{template.pk}/versions/9/").status_code == 404


def test_archiving_takes_a_template_off_the_list(client, logged_in):
    logged_in("marketing")
    template = make_template()
    client.post(f"/email/templates/{template.pk}/archive/", {"archived": "1"})
    assert "Spring news" not in client.get("/email/templates/").content.decode()
    assert "Spring news" in client.get("/email/templates/?archived=1").content.decode()


def test_sales_cannot_change_templates(client, logged_in):
    logged_in("sales")
    template = make_template()
    assert client.get("/email/templates/new/").status_code == 403
    client.post(f"/email/templates/{template.pk}/", _form(body_en="<p>Changed</p>"))
    assert TemplateVersion.objects.filter(template=template).count() == 1


def test_a_test_send_reaches_a_real_mail_server(client, logged_in, smtp):
    logged_in("marketing")
    template = make_template()
    contact = make_contact(first_name="")
    response = client.post(
        f"/email/templates/{template.pk}/test/",
        {"to": "me@example.com", "contact": str(contact.pk), "language": "es"},
    )
    assert response.status_code == 302
    [(_sender, recipients)] = smtp.envelopes
    [message] = smtp.messages
    assert recipients == ["me@example.com"]
    assert message["Subject"] == "[Test] Hola amigo"
    assert message.is_multipart()


def test_a_delivery_goes_out_from_its_return_path_with_the_brands_from(smtp):
    from django.core.mail import get_connection

    Brand.objects.create(pk=1, name="Acme", from_name="Acme", from_email="news@acme.test")
    rendering.forget_brand()
    delivery = make_delivery(make_template(), make_contact(first_name="Lucía"))
    with get_connection() as connection:
        rendering.build_message(delivery, connection=connection).send()
    [(sender, recipients)] = smtp.envelopes
    [message] = smtp.messages
    assert sender == links.return_path(delivery.pk)
    assert recipients == [delivery.email]
    assert message["From"] == "Acme <news@acme.test>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    kinds = [part.get_content_type() for part in message.walk()]
    assert kinds == ["multipart/alternative", "text/plain", "text/html"]


def test_the_brand_page_saves_and_refuses_bad_values(client, logged_in):
    logged_in("marketing")
    bad = client.post(
        "/email/brand/",
        {
            "name": "Acme",
            "primary_color": "blue",
            "background_color": "#ffffff",
            "text_color": "#000000",
            "from_email": "nope",
        },
    )
    assert bad.status_code == 422
    assert "is not a colour" in bad.content.decode()
    good = client.post(
        "/email/brand/",
        {
            "name": "Acme",
            "primary_color": "#123456",
            "background_color": "#ffffff",
            "text_color": "#000000",
            "postal_address": "Calle Mayor 1",
            "from_email": "a@acme.test",
            "logo_url": "",
            "footer": "",
            "from_name": "Acme",
            "reply_to": "",
        },
    )
    assert good.status_code == 302
    assert Brand.objects.get().postal_address == "Calle Mayor 1"


# -- API -------------------------------------------------------------------------------------------


def _api_content() -> dict[str, Any]:
    return {"en": {"subject": 'Hi {{ contact.first_name|default:"there" }}', "body": "<p>x</p>"}}


def test_the_api_creates_lists_updates_and_previews(client, logged_in):
    logged_in("marketing")
    newsletter()
    created = client.post(
        "/api/v1/email/templates",
        {"name": "API news", "subscription_type": "newsletter", "content": _api_content()},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    template_id = created.json()["id"]
    assert created.json()["version"] == 1
    listed = client.get("/api/v1/email/templates").json()["results"]
    assert [t["name"] for t in listed] == ["API news"]
    content = _api_content() | {"es": {"subject": "Hola", "body": "<p>y</p>"}}
    updated = client.patch(
        f"/api/v1/email/templates/{template_id}",
        {"content": content},
        content_type="application/json",
    )
    assert updated.json()["version"] == 2
    assert updated.json()["languages"] == ["en", "es"]
    contact = make_contact(first_name="")
    preview = client.post(
        f"/api/v1/email/templates/{template_id}/preview",
        {"contact_id": contact.pk, "language": "en"},
        content_type="application/json",
    ).json()
    assert preview["subject"] == "Hi there"
    spanish = client.post(
        f"/api/v1/email/templates/{template_id}/preview",
        {"language": "es"},
        content_type="application/json",
    ).json()
    assert spanish["subject"] == "Hola"


def test_the_api_refuses_a_bad_template_with_the_line(client, logged_in):
    logged_in("marketing")
    newsletter()
    response = client.post(
        "/api/v1/email/templates/preview",
        {"content": {"en": {"subject": "x", "body": "<p>\n{% for %}</p>"}}},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["body_en"][0].startswith("line 2:")
    missing = client.post(
        "/api/v1/email/templates",
        {"name": "x", "subscription_type": "nope", "content": _api_content()},
        content_type="application/json",
    )
    assert missing.status_code == 422
    assert "subscription_type" in missing.json()["error"]["fields"]


def test_the_preview_of_a_contact_nobody_may_see_is_404(client, logged_in):
    logged_in("sales")
    template = make_template()
    other = make_contact()
    Contact.objects.filter(pk=other.pk).update(owner=logged_in("admin"))
    logged_in("sales")
    response = client.post(
        f"/api/v1/email/templates/{template.pk}/preview",
        {"contact_id": other.pk},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_the_pages_and_their_errors_speak_spanish(client, logged_in):
    logged_in("marketing")
    response = client.post(
        "/email/templates/new/",
        _form(body_en="<p>Hola</p>\n<p>{{ contact.apodo }}</p>"),
        HTTP_ACCEPT_LANGUAGE="es",
    )
    page = response.content.decode()
    assert "línea 2: campo desconocido contact.apodo" in page
    assert "Guardar" in page and "Vista previa" in page


def test_the_spanish_version_has_a_spanish_footer():
    template = make_template()
    assert "Darse de baja" in template.current.compiled["es"]["html"]
    assert "Unsubscribe" in template.current.compiled["en"]["html"]


def test_a_mail_server_that_is_not_there_is_reported_not_a_crash(client, logged_in, settings):

    logged_in("marketing")
    template = make_template()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    response = client.post(
        f"/email/templates/{template.pk}/test/", {"to": "me@example.com"}, follow=True
    )
    assert response.status_code == 200
    assert "The test could not be sent" in response.content.decode()


def test_the_api_refuses_nul_characters_and_writes_nothing(client, logged_in):
    """PostgreSQL stores no NUL in text or JSON: one would fail the write, not name the field."""
    logged_in("marketing")
    newsletter()
    cases = [
        ({"name": "N\x00"}, "name"),
        ({"description": "d\x00"}, "description"),
        ({"content": {"en": {"subject": "H\x00i", "body": "<p>x</p>"}}}, "subject_en"),
        ({"content": {"en": {"subject": "Hi", "body": "<p>\x00</p>"}}}, "body_en"),
    ]
    for values, field in cases:
        payload = {"name": "Clean", "subscription_type": "newsletter", "content": _api_content()}
        response = client.post(
            "/api/v1/email/templates", payload | values, content_type="application/json"
        )
        assert response.status_code == 422, response.content
        assert response.json()["error"]["fields"][field] == ["may not contain a NUL character"]
    assert not EmailTemplate.objects.exists()
    template = make_template()
    response = client.patch(
        f"/api/v1/email/templates/{template.pk}",
        {"description": "\x00"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert TemplateVersion.objects.filter(template=template).count() == 1


def test_an_oversized_subject_or_preheader_is_refused_naming_the_part(client, logged_in):
    logged_in("marketing")
    newsletter()
    for part, limit in (("subject", 255), ("preheader", 500)):
        content = {"en": {"subject": "Hi", "body": "<p>x</p>", part: "H" * (limit + 1)}}
        response = client.post(
            "/api/v1/email/templates",
            {"name": f"Long {part}", "subscription_type": "newsletter", "content": content},
            content_type="application/json",
        )
        assert response.status_code == 422, response.content
        assert response.json()["error"]["fields"][f"{part}_en"] == [
            f"is longer than {limit} characters"
        ]
    assert not EmailTemplate.objects.exists()
    content = {"en": {"subject": "H" * 255, "body": "<p>x</p>", "preheader": "p" * 500}}
    response = client.post(
        "/api/v1/email/templates",
        {"name": "Just fits", "subscription_type": "newsletter", "content": content},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


def test_a_template_that_fails_for_a_contact_without_a_company_is_refused_at_save(
    client, logged_in
):
    """It parses, but the filter cannot take the empty value a contact with no company gives:
    refused at save with its line, rather than a failed preview or send later."""
    logged_in("marketing")
    newsletter()
    body = "<p>Hi</p>\n<p>{{ contact.company.employees|divisibleby:2 }}</p>"
    content = {"en": {"subject": "Hi", "body": body}}
    response = client.post(
        "/api/v1/email/templates",
        {"name": "Fragile", "subscription_type": "newsletter", "content": content},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    (problem,) = response.json()["error"]["fields"]["body_en"]
    assert problem.startswith("line 2: does not render for a contact with no field filled")
    assert not EmailTemplate.objects.exists()
    preview = client.post(
        "/api/v1/email/templates/preview", {"content": content}, content_type="application/json"
    )
    assert preview.status_code == 422
    fine = {"en": {"subject": "{{ contact.company.name|default:'you' }}", "body": "<p>x</p>"}}
    assert (
        client.post(
            "/api/v1/email/templates/preview", {"content": fine}, content_type="application/json"
        ).status_code
        == 200
    )


def test_the_brand_page_refuses_a_nul_character_and_keeps_the_brand(client, logged_in):
    logged_in("marketing")
    fields = {"name": "Acme", "primary_color": "#123456", "background_color": "#ffffff"}
    fields |= {"text_color": "#000000", "from_email": "a@acme.test"}
    assert client.post("/email/brand/", fields).status_code == 302
    bad = client.post("/email/brand/", fields | {"footer": "Bye\x00"})
    assert bad.status_code == 422
    assert "may not contain a NUL character" in bad.content.decode()
    assert Brand.objects.get().footer == ""
