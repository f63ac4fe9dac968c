"""`embudo worker` as a real process: it takes queued tasks from the database queue or Redis."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.embudo_processes import (
    REDIS_URL,
    MailSink,
    embudo_environment,
    run_ok,
    start_embudo,
)

ASSIGN = """
from django.contrib.auth import get_user_model
from embudo.crm import actions
owner = get_user_model().objects.get(username="rita")
actions.create_contact({"email": "lucia.gomez@example.es", "first_name": "Lucía",
                        "last_name": "Gómez", "owner_id": owner.pk})
"""
COUNT_TASKS = """
from django_tasks_db.models import DBTaskResult
print(",".join(DBTaskResult.objects.order_by("status").values_list("status", flat=True)))
"""


def shell(env: dict[str, str], code: str) -> str:
    return run_ok(env, "shell", "--no-imports", "-c", code).strip()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    with MailSink() as sink:
        yield sink


def assert_one_assignment_mail(mail: MailSink) -> None:
    messages = mail.wait_for(1, timeout=30)
    mail.wait_for(2, timeout=1)
    assert [m["To"] for m in messages] == ["rita@example.com"]
    assert "Gómez" in messages[0].get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_the_worker_runs_a_task_queued_in_the_database(tmp_path: Path, mail: MailSink) -> None:
    with embudo_environment(tmp_path, "dbqueue", EMBUDO_EMAIL_PORT=str(mail.port)) as env:
        run_ok(env, "migrate", "-v0")
        run_ok(env, "createuser", "rita", "--role", "sales", "--email", "rita@example.com")
        shell(env, ASSIGN)
        assert shell(env, COUNT_TASKS) == "READY"
        assert mail.wait_for(1, timeout=1) == []  # queued, not sent: no worker ran yet

        output = run_ok(env, "worker", "--batch")

        assert_one_assignment_mail(mail)
        assert shell(env, COUNT_TASKS) == "SUCCESSFUL"
        assert "database queue" in output


def test_the_worker_runs_a_task_queued_in_redis(tmp_path: Path, mail: MailSink) -> None:
    # A Redis database of this test's own (14 on SQLite runs, 15 on PostgreSQL runs), emptied
    # first so a job left behind by an interrupted run cannot stand in for this one.
    number = 15 if os.environ.get("EMBUDO_DATABASE_URL", "").startswith("postgres") else 14
    url = f"{REDIS_URL}/{number}"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not answering at {REDIS_URL}; .ci/run starts one (redis-server)")
    client.flushdb()
    extra = {"EMBUDO_EMAIL_PORT": str(mail.port), "EMBUDO_REDIS_URL": url}
    with embudo_environment(tmp_path, "redisqueue", **extra) as env:
        run_ok(env, "migrate", "-v0")
        run_ok(env, "createuser", "rita", "--role", "sales", "--email", "rita@example.com")
        shell(env, ASSIGN)
        assert client.llen("rq:queue:default") == 1
        assert shell(env, COUNT_TASKS) == ""  # the database queue is not used

        output = run_ok(env, "worker", "--batch")

        assert_one_assignment_mail(mail)
        assert client.llen("rq:queue:default") == 0
        assert "Redis queue" in output
    client.flushdb()


def test_the_worker_stops_at_once_on_sigterm_while_idle(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "workeridle") as env:
        run_ok(env, "migrate", "-v0")
        log = tmp_path / "idle.log"
        worker = start_embudo(env, "worker", "--interval", "30", log=log)
        deadline = time.monotonic() + 60
        while "Starting worker" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, log.read_text()
        assert time.monotonic() - started < 10  # did not sit out the 30 s poll interval


def test_the_worker_names_an_unknown_queue_and_the_known_ones() -> None:
    with pytest.raises(CommandError, match="no task queue named invoices; the queues are default"):
        call_command("worker", "--queue", "invoices", "--batch")
