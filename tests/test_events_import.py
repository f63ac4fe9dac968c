"""`embudo import events FILE`: CSV and NDJSON history, validated, in one transaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from embudo.crm.models import Contact, LifecycleTransition
from embudo.csvimport.run import ImportOptions, run_import
from embudo.tracking.models import Event, Touchpoint
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_history_lands_on_contacts_with_touchpoints(tmp_path: Path) -> None:
    known = make_contact(email="known@example.com", external_id="crm-1")
    path = write(
        tmp_path,
        "history.csv",
        "Event,Timestamp,Email,External ID,URL,utm_source,utm_medium,utm_campaign,Plan\n"
        "page_view,2025-03-01T10:00:00Z,known@example.com,,https://acme.test/,google,cpc,brand,\n"
        "email_click,2025-03-02T10:00:00Z,,crm-1,https://acme.test/x,newsletter,email,march,\n"
        "form_submit,2025-03-03T10:00:00Z,new@example.com,,https://acme.test/demo,,,,pro\n",
    )

    result = run_import("events", path, ImportOptions())

    assert result.committed and result.created == 3
    assert known.events.count() == 2
    new = Contact.objects.get(email="new@example.com")
    assert LifecycleTransition.objects.filter(contact=new, cause="import").count() == 1
    assert new.events.get().properties == {"Plan": "pro"}
    assert Touchpoint.objects.filter(contact=known).count() == 2
    known.refresh_from_db()
    assert (known.original_source, known.original_campaign) == ("google", "brand")


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path) -> None:
    make_contact(email="a@example.com")
    path = write(tmp_path, "h.csv", "type,occurred_at,email\npage_view,2025-01-01,a@example.com\n")
    run_import("events", path, ImportOptions())

    again = run_import("events", path, ImportOptions())

    assert (again.created, again.unchanged) == (0, 1)
    assert Event.objects.count() == 1


def test_a_bad_row_changes_nothing_and_is_reported_by_line(tmp_path: Path) -> None:
    make_contact(email="a@example.com")
    path = write(
        tmp_path,
        "bad.csv",
        "type,occurred_at,email,contact_id\n"
        "page_view,2025-01-01T00:00:00Z,a@example.com,\n"
        "page_view,1999-01-01T00:00:00Z,a@example.com,\n"
        "page_view,2025-01-02T00:00:00Z,,424242\n"
        "page_view,2025-01-03T00:00:00Z,newbie@example.com,\n",
    )

    result = run_import("events", path, ImportOptions())

    assert not result.committed
    problems = {(e.line, e.problem) for e in result.errors}
    assert any(line == 3 and "before 2000" in problem for line, problem in problems)
    assert (4, "no contact with id 424242") in problems
    assert Event.objects.count() == 0
    assert not Contact.objects.filter(email="newbie@example.com").exists()


def test_skip_invalid_keeps_the_good_rows(tmp_path: Path) -> None:
    make_contact(email="a@example.com")
    path = write(
        tmp_path,
        "mixed.csv",
        "type,email,occurred_at\n"
        "page_view,a@example.com,2025-01-01T10:00:00Z\n"
        ",a@example.com,2025-01-01T10:01:00Z\n"
        "page_view,a@example.com,\n"
        "page_view,a@example.com,2025-01-01T10:03:00Z\n",
    )

    result = run_import("events", path, ImportOptions(skip_invalid=True))

    assert result.committed and result.created == 2
    assert [(e.line, e.column) for e in result.errors] == [(3, "type"), (4, "occurred_at")]


def test_ndjson_lines_are_events_as_the_api_takes_them(tmp_path: Path) -> None:
    contact = make_contact(email="nd@example.com")
    lines = [
        {
            "type": "page_view",
            "email": "nd@example.com",
            "occurred_at": "2025-05-01T09:00:00Z",
            "properties": {"title": "Home"},
        },
        {
            "type": "content_view",
            "contact_id": contact.pk,
            "occurred_at": "2025-05-02T09:00:00Z",
            "properties": {"asset": "ebook"},
        },
    ]
    path = write(tmp_path, "events.ndjson", "\n".join(json.dumps(x) for x in lines) + "\n\n")

    result = run_import("events", path, ImportOptions())

    assert result.committed and result.created == 2
    assert set(contact.events.values_list("type", flat=True)) == {"page_view", "content_view"}


def test_ndjson_with_a_broken_line_changes_nothing(tmp_path: Path) -> None:
    make_contact(email="nd@example.com")
    path = write(
        tmp_path,
        "broken.jsonl",
        '{"type": "page_view", "email": "nd@example.com", "occurred_at": "2025-01-01"}\n'
        '{"type": \n',
    )

    result = run_import("events", path, ImportOptions())

    assert not result.committed
    assert result.errors[0].line == 2 and "not valid JSON" in result.errors[0].problem
    assert Event.objects.count() == 0


def test_file_without_a_type_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "notype.csv", "email,url\na@example.com,https://acme.test\n")

    with pytest.raises(CommandError, match="no event type column"):
        call_command("import", "events", str(path), "--quiet")
    assert Event.objects.count() == 0


def test_cli_imports_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_contact(email="cli@example.com")
    path = write(tmp_path, "cli.csv", "type,email,date\npage_view,cli@example.com,2025-02-01\n")

    call_command("import", "events", str(path), "--quiet")

    assert Event.objects.filter(contact__email="cli@example.com").count() == 1
