"""Templates: what an author writes is checked at save, compiled into the brand's layout, and
rendered per contact into the finished message a delivery sends."""

from __future__ import annotations

import pytest
from django.core import mail

from embudo.automation import authoring, links, rendering
from embudo.automation.models import Brand, Delivery, TemplateVersion
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from tests.email_fixtures import make_delivery, make_template, newsletter
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def _content(body: str, subject: str = "Hi") -> dict:
    return {"en": {"subject": subject, "preheader": "", "body": body}}


def test_an_unknown_field_is_refused_at_save_with_its_line():
    with pytest.raises(ValidationFailed) as refused:
        make_template(**_content("<p>Hi</p>\n<p>{{ contact.fist_name }}</p>"))
    assert refused.value.errors == {"body_en": ["line 2: unknown field contact.fist_name"]}
    assert not TemplateVersion.objects.exists()


def test_broken_syntax_is_refused_with_its_line():
    with pytest.raises(ValidationFailed) as refused:
        make_template(**_content("<p>Hi</p>\n\n{% if contact.first_name %}<p>x</p>"))
    [message] = refused.value.errors["body_en"]
    assert message.startswith("line 3:")


def test_an_undefined_custom_property_and_a_forbidden_tag_are_refused():
    with pytest.raises(ValidationFailed) as refused:
        make_template(**_content("{% debug %}", subject="{{ contact.properties.shoe_size }}"))
    assert "no contact property named 'shoe_size'" in refused.value.errors["subject_en"][0]
    assert "{% debug %}" in refused.value.errors["body_en"][0]


def test_the_english_version_is_required():
    with pytest.raises(ValidationFailed) as refused:
        authoring.create_template(
            name="Only Spanish",
            subscription_type=newsletter(),
            content={"es": {"subject": "Hola", "body": "<p>Hola</p>"}},
            actor=None,
        )
    assert "subject_en" in refused.value.errors


def test_a_contact_with_no_first_name_sees_the_fallback():
    template = make_template()
    contact = make_contact(first_name="", email="nobody@example.com")
    shown = authoring.preview(version=template.current, contact=contact)
    assert shown.subject == "Hello there"
    assert "Hi there" in shown.html
    assert "your team" in shown.text


def test_personal_fields_fill_from_contact_company_owner_and_properties():
    template = make_template()
    owner = make_user("sales", first_name="Ana", last_name="Ruiz")
    contact = make_contact(
        first_name="Lucía",
        company_id=make_company(name="Acme & Co").pk,
        owner_id=owner.pk,
        properties={"plan": "pro"},
    )
    contact.refresh_from_db()
    shown = authoring.preview(version=template.current, contact=contact)
    assert shown.subject == "Hello Lucía"
    assert "Acme &amp; Co on the pro plan" in shown.html  # escaped in HTML
    assert "Acme & Co on the pro plan" in shown.text  # not in text
    assert "Ana Ruiz" in shown.html


def test_the_contacts_language_picks_falling_back_to_english():
    template = make_template()
    spanish = authoring.preview(version=template.current, language="es")
    assert spanish.subject == "Hola amigo"
    assert "Ver" in spanish.html
    english_only = make_template("English only", **_content("<p>Hello</p>", subject="Hello"))
    fallback = authoring.preview(version=english_only.current, language="es")
    assert fallback.language == "en"
    assert fallback.subject == "Hello"


def test_the_html_is_in_the_brands_layout_with_css_inlined_and_a_text_part():
    Brand.objects.create(
        pk=1, name="Acme", postal_address="Calle Mayor 1, Madrid", primary_color="#ff0000"
    )
    rendering.forget_brand()
    compiled = make_template().current.compiled["en"]
    assert "Calle Mayor 1, Madrid" in compiled["html"]
    assert 'style="' in compiled["html"] and "#ff0000" in compiled["html"]
    assert "@media" in compiled["html"]  # responsive rules stay for clients that read them
    assert compiled["links"] == [
        "https://example.com/pricing?utm_source=newsletter&utm_campaign=spring",
        "https://example.com/start",
    ]
    assert '# Hi {{ contact.first_name|default:"there" }}' in compiled["text"]
    assert "Calle Mayor 1, Madrid" in compiled["text"]


def test_every_save_is_a_new_version_and_old_ones_stay():
    template = make_template()
    first = template.current
    authoring.update_template(
        template, content=_content("<p>Second {{ contact.email }}</p>"), actor=None
    )
    template.refresh_from_db()
    assert template.current.number == 2
    first.refresh_from_db()
    assert first.number == 1 and "Hi" in first.content["en"]["body"]
    assert list(template.versions.values_list("number", flat=True)) == [1, 2]


def test_build_message_makes_the_finished_message(settings):
    settings.EMBUDO_PUBLIC_URL = "https://mail.example.com"
    settings.EMBUDO_BOUNCE_DOMAIN = "bounces.example.com"
    Brand.objects.create(pk=1, name="Acme", from_name="Acme News", from_email="news@acme.test")
    rendering.forget_brand()
    contact = make_contact(first_name="Lucía")
    Contact.objects.filter(pk=contact.pk).update(language="es")  # no action sets it yet
    contact.refresh_from_db()
    delivery = make_delivery(make_template(), contact)
    message = rendering.build_message(delivery)
    assert message.subject == "Hola Lucía"
    assert message.to == [contact.email]
    assert message.from_email == links.return_path(delivery.pk)
    assert message.envelope_sender == message.from_email
    assert message.extra_headers["From"] == "Acme News <news@acme.test>"
    unsubscribe = "https://mail.example.com" + links.unsubscribe_path(delivery.pk)
    assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Message-ID"].endswith("@bounces.example.com>")
    html = message.alternatives[0].content
    assert "https://mail.example.com" + links.click_path(delivery.pk, 0) in html
    assert "https://mail.example.com" + links.open_path(delivery.pk) in html
    assert "https://example.com/es" not in html  # every link is a tracked click
    assert links.click_path(delivery.pk, 0) in message.body
    raw = message.message()
    assert raw["From"] == "Acme News <news@acme.test>"
    assert raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_test_send_goes_through_the_mail_backend():
    template = make_template()
    contact = make_contact(first_name="Lucía")
    authoring.send_test(template.current, to="Me@Example.com", contact=contact, actor=None)
    [sent] = mail.outbox
    assert sent.to == ["me@example.com"]
    assert sent.subject == "[Test] Hello Lucía"
    assert "https://example.com/start" in sent.alternatives[0].content


def test_a_test_to_a_bad_address_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        authoring.send_test(make_template().current, to="not an address", actor=None)
    assert "to" in refused.value.errors
    assert not mail.outbox


def test_brand_settings_are_checked():
    with pytest.raises(ValidationFailed) as refused:
        authoring.save_brand(
            {"primary_color": "red", "from_email": "nope", "footer": "{{ contact.email }}"},
            actor=None,
        )
    assert set(refused.value.errors) == {"primary_color", "from_email", "footer"}
    assert not Brand.objects.exists()
    brand = authoring.save_brand({"name": "Acme", "primary_color": "#112233"}, actor=None)
    assert brand.primary_color == "#112233"
    assert rendering.current_brand().name == "Acme"


def test_a_batch_renders_without_a_query_per_message(django_assert_num_queries):
    template = make_template()
    owner = make_user("sales")
    for _ in range(5):
        contact = make_contact(company_id=make_company().pk, owner_id=owner.pk)
        make_delivery(template, contact)
    batch = list(
        Delivery.objects.select_related(
            "contact", "contact__company", "contact__owner", "version"
        ).order_by("pk")
    )
    rendering.build_message(batch[0])  # the brand is read once, then kept
    with django_assert_num_queries(0):
        messages = [rendering.build_message(delivery) for delivery in batch]
    assert len({m.extra_headers["Message-ID"] for m in messages}) == 5
    assert [m.to for m in messages] == [[d.email] for d in batch]
