"""`embudo createuser` and `embudo apikey`: people and integrations get access from the CLI."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from embudo.accounts.models import ApiKey
from embudo.accounts.roles import role_of
from tests.factories import make_user


def embudo(*args: str, stdin: str | None = None, monkeypatch: Any = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def can_log_in(username: str, password: str) -> bool:
    return Client().login(username=username, password=password)


# -- createuser ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_createuser_makes_a_user_with_that_role_who_can_log_in() -> None:
    out = embudo(
        "createuser", "marta", "--role", "marketing", "--email", "Marta@Example.com",
        "--password", "funnel-for-everyone-42",
    )  # fmt: skip
    user = get_user_model().objects.get(username="marta")
    assert "Created marketing user 'marta'" in out
    assert role_of(user) == "marketing"
    assert user.email == "marta@example.com"
    assert can_log_in("marta", "funnel-for-everyone-42")


@pytest.mark.django_db
def test_createuser_reads_the_password_from_stdin(monkeypatch: Any) -> None:
    embudo(
        "createuser", "sofia", "--role", "sales_manager", "--password-stdin",
        stdin="quota-and-pipeline-7\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert can_log_in("sofia", "quota-and-pipeline-7")
    assert role_of(get_user_model().objects.get(username="sofia")) == "sales_manager"


@pytest.mark.django_db
def test_createuser_without_a_terminal_generates_and_prints_a_working_password(
    monkeypatch: Any,
) -> None:
    out = embudo("createuser", "diego", "--role", "sales", stdin="", monkeypatch=monkeypatch)
    match = re.search(r"Password \(shown once\): (\S+)", out)
    assert match, out
    assert can_log_in("diego", match.group(1))


class TerminalInput(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_createuser_prompts_until_both_entries_match_and_pass_the_rules(monkeypatch: Any) -> None:
    typed = iter(
        [
            *("short", "short"),  # too short
            *("first-passphrase-1", "other-passphrase-2"),  # the two entries differ
            *("good-passphrase-3", "good-passphrase-3"),
        ]
    )
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    monkeypatch.setattr("sys.stdin", TerminalInput())
    errors = io.StringIO()

    call_command("createuser", "pat", "--role", "sales", stdout=io.StringIO(), stderr=errors)

    assert "too short" in errors.getvalue() and "differ" in errors.getvalue()
    assert can_log_in("pat", "good-passphrase-3")


@pytest.mark.django_db
def test_createuser_gives_up_after_three_bad_prompts_and_creates_nobody(monkeypatch: Any) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "abc")
    monkeypatch.setattr("sys.stdin", TerminalInput())
    with pytest.raises(CommandError, match="no acceptable password after three tries"):
        call_command("createuser", "pat", "--role", "sales", stderr=io.StringIO())
    assert not get_user_model().objects.filter(username="pat").exists()


@pytest.mark.django_db
def test_createuser_rejects_an_unknown_role_naming_the_valid_ones() -> None:
    with pytest.raises(CommandError) as failure:
        embudo("createuser", "x", "--role", "ceo", "--password", "funnel-for-everyone-42")
    assert "ceo" in str(failure.value) and "sales_manager" in str(failure.value)
    assert not get_user_model().objects.filter(username="x").exists()


@pytest.mark.django_db
def test_createuser_refuses_an_existing_username_and_leaves_it_untouched() -> None:
    make_user("sales", username="javier")
    with pytest.raises(CommandError, match="a user named 'JAVIER' already exists"):
        embudo("createuser", "JAVIER", "--role", "admin", "--password", "funnel-for-everyone-42")
    user = get_user_model().objects.get(username="javier")
    assert role_of(user) == "sales" and not user.is_superuser


@pytest.mark.django_db
def test_createuser_refuses_a_weak_password_and_creates_nobody() -> None:
    with pytest.raises(CommandError, match="too short"):
        embudo("createuser", "weak", "--role", "sales", "--password", "abc")
    with pytest.raises(CommandError, match="too common"):
        embudo("createuser", "weak", "--role", "sales", "--password", "password123")
    assert not get_user_model().objects.filter(username="weak").exists()


@pytest.mark.django_db
def test_createuser_refuses_a_malformed_email() -> None:
    with pytest.raises(CommandError, match="not a valid email address"):
        embudo(
            "createuser", "bad", "--role", "sales", "--email", "not-an-email",
            "--password", "funnel-for-everyone-42",
        )  # fmt: skip
    assert not get_user_model().objects.filter(username="bad").exists()


# -- apikey -------------------------------------------------------------------------------------


def issued_key(out: str) -> str:
    match = re.search(r"^(emb_\S+)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def api_status(key: str) -> int:
    return Client().get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {key}").status_code


@pytest.mark.django_db
def test_apikey_create_prints_a_working_key_once_and_stores_only_its_hash() -> None:
    out = embudo("apikey", "create", "--name", "website", "--scope", "read", "--scope", "ingest")
    key = issued_key(out)
    stored = ApiKey.objects.get(name="website")
    assert stored.scopes == ["ingest", "read"]
    assert key not in (stored.digest, stored.prefix) and key[4:] not in stored.digest
    assert api_status(key) == 200
    assert api_status(key[:-1] + ("A" if key[-1] != "A" else "B")) == 401
    assert key not in embudo("apikey", "list")  # never shown again


@pytest.mark.django_db
def test_apikey_create_rejects_an_unknown_scope_and_stores_nothing() -> None:
    with pytest.raises(CommandError, match="unknown scope everything"):
        embudo("apikey", "create", "--name", "crm-sync", "--scope", "everything")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_apikey_create_can_act_for_a_named_user_but_not_an_unknown_one() -> None:
    admin = make_user("admin", username="ana")
    embudo("apikey", "create", "--name", "etl", "--scope", "write", "--user", "ana")
    assert ApiKey.objects.get(name="etl").created_by == admin
    with pytest.raises(CommandError, match="no active user named 'nobody'"):
        embudo("apikey", "create", "--name", "etl2", "--scope", "write", "--user", "nobody")


@pytest.mark.django_db
def test_apikey_list_shows_each_key_with_scopes_and_status() -> None:
    assert "No API keys yet" in embudo("apikey", "list")
    embudo("apikey", "create", "--name", "website", "--scope", "ingest")
    embudo("apikey", "create", "--name", "warehouse", "--scope", "read")
    website = ApiKey.objects.get(name="website")
    embudo("apikey", "revoke", website.prefix)

    lines = embudo("apikey", "list").splitlines()

    assert lines[0].split() == ["PREFIX", "NAME", "SCOPES", "CREATED", "LAST", "USED", "STATUS"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert rows["website"].startswith(website.prefix) and "revoked" in rows["website"]
    assert "read" in rows["warehouse"] and rows["warehouse"].endswith("active")
    assert "website" not in embudo("apikey", "list", "--active")


@pytest.mark.django_db
def test_apikey_revoke_disables_the_key_and_says_so_when_done_twice() -> None:
    key = issued_key(embudo("apikey", "create", "--name", "website", "--scope", "read"))
    prefix = ApiKey.objects.get(name="website").prefix
    assert api_status(key) == 200

    assert "Revoked API key 'website'" in embudo("apikey", "revoke", prefix)

    assert api_status(key) == 401
    with pytest.raises(CommandError, match="already revoked"):
        embudo("apikey", "revoke", key)  # the whole key is accepted too


@pytest.mark.django_db
def test_apikey_revoke_names_an_unknown_prefix() -> None:
    with pytest.raises(CommandError, match="no API key with prefix 'abc123'"):
        embudo("apikey", "revoke", "abc123")
