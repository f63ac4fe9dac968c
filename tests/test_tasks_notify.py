"""A contact's new owner is emailed once, after the assignment commits, through real SMTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from embudo.accounts.actions import create_user
from embudo.crm import actions as crm
from embudo.crm.tasks import notify_owner
from tests.embudo_processes import MailSink, free_port
from tests.factories import PASSWORD, make_company, make_contact

_reps = itertools.count(1)


def make_rep(email: str, first_name: str = "") -> Any:
    return create_user(
        f"rep{next(_reps)}", role="sales", email=email, password=PASSWORD, first_name=first_name
    )


def subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


TASK_PATH = "embudo.crm.tasks.notify_owner"


@pytest.fixture
def mail(settings: Any) -> Iterator[MailSink]:
    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        yield sink


def queued() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=TASK_PATH).order_by("enqueued_at"))


def run(result: DBTaskResult) -> dict[str, Any]:
    args = result.args_kwargs["args"]
    return notify_owner.call(*args)


@pytest.mark.django_db
def test_creating_a_contact_with_an_owner_queues_a_notice_only_once_committed(
    django_capture_on_commit_callbacks: Any,
) -> None:
    rep = make_rep("rep@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        contact = make_contact(owner_id=rep.pk)
    assert queued() == []  # nothing is queued while the transaction could still roll back
    for callback in callbacks:
        callback()
    [result] = queued()
    assert result.status == "READY"
    assert result.args_kwargs["args"][:2] == [contact.pk, rep.pk]


@pytest.mark.django_db
def test_the_owner_gets_one_mail_however_often_the_task_runs(
    mail: MailSink, django_capture_on_commit_callbacks: Any
) -> None:
    rep = make_rep("rita.rep@example.com", "Rita")
    company = make_company(name="Logística Norte")
    with django_capture_on_commit_callbacks(execute=True):
        make_contact(
            owner_id=rep.pk,
            email="ana.lopez@example.com",
            first_name="Ana",
            last_name="López",
            company_id=company.pk,
            job_title="Directora Comercial",
        )
    [result] = queued()

    first = run(result)
    second = run(result)

    assert first == {"sent": True, "to": rep.email}
    assert second["sent"] is False and "already notified" in second["reason"]
    [message] = mail.wait_for(1)
    mail.wait_for(2, timeout=1)
    assert len(mail.messages) == 1
    assert message["To"] == rep.email
    assert subject(message) == "You now own Ana López"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Ana López" in body and "Logística Norte" in body and "Directora Comercial" in body


@pytest.mark.django_db
def test_changing_the_owner_notifies_the_new_owner_but_other_edits_do_not(
    mail: MailSink, django_capture_on_commit_callbacks: Any
) -> None:
    first_rep = make_rep("first@example.com")
    second_rep = make_rep("second@example.com")
    contact = make_contact(owner_id=first_rep.pk)
    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"job_title": "CFO"})
    assert queued() == []

    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"owner_id": second_rep.pk})
    [result] = queued()
    assert run(result)["sent"] is True
    assert [m["To"] for m in mail.wait_for(1)] == ["second@example.com"]


@pytest.mark.django_db
def test_taking_a_contact_yourself_sends_no_mail(django_capture_on_commit_callbacks: Any) -> None:
    rep = make_rep("rep@example.com")
    contact = make_contact()
    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"owner_id": rep.pk}, actor=rep)
    assert queued() == []


@pytest.mark.django_db
def test_a_notice_overtaken_by_a_reassignment_sends_nothing(
    mail: MailSink, django_capture_on_commit_callbacks: Any
) -> None:
    first_rep = make_rep("first@example.com")
    second_rep = make_rep("second@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        contact = make_contact(owner_id=first_rep.pk)
        crm.update_contact(contact, {"owner_id": second_rep.pk})
    stale, fresh = queued()

    assert run(stale) == {"sent": False, "reason": f"contact {contact.pk} has another owner now"}
    assert run(fresh)["sent"] is True
    assert [m["To"] for m in mail.wait_for(1)] == ["second@example.com"]


@pytest.mark.django_db
def test_a_mail_server_outage_leaves_the_notice_to_a_retry(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    rep = make_rep("rep@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        make_contact(owner_id=rep.pk)
    [result] = queued()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there

    with pytest.raises(OSError):
        run(result)

    with MailSink() as sink:
        settings.EMAIL_PORT = sink.port
        assert run(result)["sent"] is True
        assert len(sink.wait_for(1)) == 1


@pytest.mark.django_db
def test_an_owner_without_an_email_address_is_skipped_with_a_reason(
    mail: MailSink, django_capture_on_commit_callbacks: Any
) -> None:
    rep = make_rep("")
    with django_capture_on_commit_callbacks(execute=True):
        make_contact(owner_id=rep.pk)
    [result] = queued()
    outcome = run(result)
    assert outcome["sent"] is False and "has no email address" in outcome["reason"]
    assert mail.wait_for(1, timeout=0.5) == []
