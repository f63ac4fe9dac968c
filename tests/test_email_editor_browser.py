"""The template editor in headless Chromium: the toolbar writes the body, the preview follows
as you type, as the contact you search for, in the language you pick; errors show their line."""

from __future__ import annotations

import re
from typing import Any

import pytest

from embudo.automation.models import EmailTemplate
from tests.email_fixtures import make_template
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _preview_text(page: Any) -> str:
    return page.frame_locator("#preview-frame").locator("body").inner_text()


def test_the_editor_previews_as_any_contact_in_both_languages(
    live_server: Any, page: Any, browser_login: Any, tmp_path: Any
) -> None:
    template = make_template()
    make_contact(first_name="Lucía", last_name="Prieto", email="lucia@example.com")
    browser_login(make_user("marketing"))
    page.goto(f"{live_server.url}/email/templates/{template.pk}/")

    subject = page.get_by_test_id("preview-subject")
    page.wait_for_function("document.getElementById('preview-subject').textContent.length > 0")
    assert subject.inner_text() == "Hello there"  # nobody chosen: a contact with no name
    assert "Hi there" in _preview_text(page)

    page.locator("#preview-contact").fill("luc")
    page.wait_for_function("document.querySelectorAll('#preview-contacts option').length > 0")
    option = page.locator("#preview-contacts option").first.get_attribute("value")
    page.locator("#preview-contact").fill(option)
    page.wait_for_function(
        "document.getElementById('preview-subject').textContent === 'Hello Lucía'"
    )

    page.locator("#preview-language").select_option("es")
    page.wait_for_function(
        "document.getElementById('preview-subject').textContent === 'Hola Lucía'"
    )
    assert "Hola Lucía" in _preview_text(page)

    body = page.locator("#body_en")
    body.fill("<p>New text for {{ contact.first_name }}</p>\n")
    body.press("End")
    page.locator("[data-for=body_en] button[title=Bold]").click()
    page.locator("#preview-language").select_option("en")
    page.wait_for_function(
        "document.getElementById('preview-frame').srcdoc.includes('New text for Lucía')"
    )
    assert "<strong></strong>" in body.input_value()

    body.fill("<p>Hi</p>\n<p>{{ contact.favourite_colour }}</p>")
    problems = page.locator("#preview-errors")
    problems.wait_for(state="visible")
    assert "line 2: unknown field contact.favourite_colour" in problems.inner_text()
    page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)

    body.fill('<p>Version two, {{ contact.first_name|default:"friend" }}</p>')
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(re.compile(rf"/email/templates/{template.pk}/$"))
    assert page.get_by_test_id("versions").locator("tbody tr").count() == 2
    assert EmailTemplate.objects.get(pk=template.pk).current.number == 2
