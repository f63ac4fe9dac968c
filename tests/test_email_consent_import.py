"""`embudo import consent FILE`: consent given elsewhere, written in bulk to the ledger."""

from __future__ import annotations

import io
from pathlib import Path

import freezegun
import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from embudo.automation import consent
from embudo.automation.mailability import mailable
from embudo.automation.models import ConsentRecord, Subscription
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def run(path: Path) -> str:
    out = io.StringIO()
    call_command("import", "consent", str(path), "--quiet", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_consent_file_sets_each_state_and_writes_the_ledger(tmp_path: Path) -> None:
    ana, bob = make_contact(email="ana@example.com"), make_contact(email="bob@example.com")
    news = consent.create_subscription_type({"name": "News", "key": "news", "double_opt_in": True})
    with freezegun.freeze_time("2024-06-01"):
        consent.subscribe(bob, news, source="manual")
    path = tmp_path / "consent.csv"
    path.write_text(
        "Email,Subscription type,Status,Consented at,Text,IP address\n"
        "ANA@example.com,news,subscribed,2025-03-01 10:00,Ticked the box at the fair,192.0.2.1\n"
        "bob@example.com,news,unsubscribed,2025-04-01,,\n"
    )

    run(path)

    assert mailable([ana.pk, bob.pk], news).mailable == {ana.pk: "ana@example.com"}
    assert mailable([bob.pk], news).refused == {bob.pk: "unsubscribed"}
    record = ConsentRecord.objects.get(contact=ana)
    assert (record.source, record.text, record.ip_address, record.at.year) == (
        "import",
        "Ticked the box at the fair",
        "192.0.2.1",
        2025,
    )
    assert mail.outbox == []  # consent given elsewhere: no double opt-in mail


def test_an_older_row_does_not_undo_a_newer_choice(tmp_path: Path) -> None:
    ana = make_contact(email="ana@example.com")
    news = consent.create_subscription_type({"name": "News", "key": "news"})
    consent.subscribe(ana, news, source="preferences")
    path = tmp_path / "consent.csv"
    path.write_text(
        "email,subscription_type,status,consented_at\nana@example.com,news,no,2020-01-01\n"
    )

    run(path)

    assert Subscription.objects.get(contact=ana).status == "subscribed"
    assert ConsentRecord.objects.filter(contact=ana, source="import").count() == 1


def test_a_bad_row_names_its_line_and_column_and_nothing_is_written(tmp_path: Path) -> None:
    make_contact(email="ana@example.com")
    consent.create_subscription_type({"name": "News", "key": "news"})
    path = tmp_path / "consent.csv"
    path.write_text(
        "email,subscription_type,status\n"
        "ana@example.com,news,subscribed\n"
        "ana@example.com,gossip,subscribed\n"
        "nobody@example.com,news,subscribed\n"
        "ana@example.com,news,maybe\n"
    )

    err = io.StringIO()
    with pytest.raises(CommandError, match="3 of 4 rows have problems, so nothing was imported"):
        call_command("import", "consent", str(path), "--quiet", stdout=io.StringIO(), stderr=err)

    problems = err.getvalue()
    assert "line 3" in problems and "gossip" in problems
    assert "line 4" in problems and "nobody@example.com" in problems
    assert "line 5" in problems and "'maybe'" in problems
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()


def test_a_file_without_the_status_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "consent.csv"
    path.write_text("email,subscription_type\nana@example.com,news\n")

    with pytest.raises(CommandError, match="no status column"):
        run(path)
