"""`embudo import contacts|companies FILE`: real-world CSV in, one transaction, row-level errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from embudo import pipeline
from embudo.accounts import actions as accounts
from embudo.accounts.models import AuditEntry
from embudo.crm import actions as crm
from embudo.crm import importing
from embudo.crm.models import (
    Company,
    Contact,
    LifecycleTransition,
    PropertyDefinition,
)
from embudo.csvimport import table
from embudo.csvimport.run import ImportOptions, run_import
from embudo.csvimport.source import CsvSource
from tests.factories import make_company, make_contact
from tests.journeys import journey

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "import"
REPO = Path(__file__).resolve().parent.parent
DATASETS = (REPO / ".." / "shared" / "datasets").resolve()
T0 = dt.datetime(2024, 1, 5, 9, 0, tzinfo=dt.UTC)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def run(kind: str, path: Path | str, *args: str) -> tuple[str, str]:
    """Run `embudo import` as a user would (quietly); the command's stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import", kind, str(path), "--quiet", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(kind: str, path: Path | str, *args: str) -> tuple[str, str]:
    """Run an import that must fail; the failure message and the command's stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import", kind, str(path), "--quiet", *args, stdout=out, stderr=err)
    return str(raised.value), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "contacts.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def nothing_stored() -> bool:
    return not (
        Contact.objects.exists()
        or Company.objects.exists()
        or PropertyDefinition.objects.exists()
        or LifecycleTransition.objects.exists()
        or AuditEntry.objects.filter(action__in=["import", "property.define"]).exists()
    )


@pytest.fixture
def maria() -> Any:
    return accounts.create_user("maria", role="sales", email="maria@example.com")


# -- good files ---------------------------------------------------------------------------------


def test_hubspot_export_creates_contacts_with_company_owner_and_typed_properties(
    maria: Any,
) -> None:
    out, _err = run("contacts", DATA / "hubspot_contacts.csv", "--id-column", "Record ID")

    assert "4 created" in out
    lucia = Contact.objects.get(email="lucia.fernandez@example.com")
    assert (lucia.first_name, lucia.last_name, lucia.external_id) == ("Lucía", "Fernández", "1001")
    assert lucia.phone == "+34 600 111 222" and lucia.job_title == "CMO"
    assert lucia.owner == maria
    assert lucia.properties == {"annual_revenue": 1200000, "newsletter_opt_in": True}
    tom = Contact.objects.get(external_id="1002")
    assert tom.owner == maria  # named by username this time
    assert tom.lead_status == "new"
    assert tom.company_id == lucia.company_id  # "acme iberia" is "Acme Iberia"
    assert Contact.objects.get(external_id="1003").lead_status == "attempting"
    assert Company.objects.count() == 2
    types = dict(PropertyDefinition.objects.values_list("name", "type"))
    assert types == {"annual_revenue": "number", "newsletter_opt_in": "boolean"}


def test_stage_dates_become_history_in_date_order_with_cause_import(maria: Any) -> None:
    run("contacts", DATA / "hubspot_contacts.csv", "--id-column", "Record ID")

    lucia = Contact.objects.get(external_id="1001")
    moves = list(lucia.transitions.values_list("from_stage", "to_stage", "changed_at", "cause"))
    assert moves == [
        ("", "subscriber", utc("2024-01-10 09:15"), "import"),
        ("subscriber", "lead", utc("2024-01-12 10:00"), "import"),
        ("lead", "mql", utc("2024-02-01 08:30"), "import"),
        ("mql", "sql", utc("2024-02-03 16:00"), "import"),
        ("sql", "opportunity", utc("2024-02-20 11:00"), "import"),
        ("opportunity", "customer", utc("2024-03-15 12:00"), "import"),
    ]
    assert lucia.lifecycle_stage == "customer"
    assert lucia.lifecycle_stage_changed_at == utc("2024-03-15 12:00")
    assert lucia.created_at == utc("2024-01-10 09:15")
    tom = Contact.objects.get(external_id="1002")
    assert tom.lifecycle_stage == "mql"  # "Marketing Qualified Lead"
    assert list(tom.transitions.values_list("to_stage", flat=True)) == ["lead", "mql"]


def test_reimporting_the_same_file_changes_nothing_and_adds_no_history(maria: Any) -> None:
    run("contacts", DATA / "hubspot_contacts.csv", "--id-column", "Record ID")
    before = LifecycleTransition.objects.count()

    out, _err = run("contacts", DATA / "hubspot_contacts.csv", "--id-column", "Record ID")

    assert "0 created, 0 updated, 4 unchanged" in out
    assert LifecycleTransition.objects.count() == before == 10
    assert Contact.objects.count() == 4 and Company.objects.count() == 2


def test_rows_update_contacts_matched_by_email_case_insensitively(tmp_path: Path) -> None:
    existing = make_contact(email="ana@example.com", first_name="Ana", job_title="Analyst")
    path = write(
        tmp_path,
        "E-mail,Job Title,Phone\nANA@Example.COM,Head of Data,\nnew@example.com,CTO,+1 555\n",
    )

    out, _err = run("contacts", path)

    assert "1 created, 1 updated" in out
    existing.refresh_from_db()
    assert existing.job_title == "Head of Data"
    assert existing.first_name == "Ana"  # no column: untouched
    assert existing.phone == ""  # an empty cell leaves the value as it was
    assert Contact.objects.get(email="new@example.com").phone == "+1 555"


def test_external_id_matches_first_and_may_change_the_email(tmp_path: Path) -> None:
    existing = make_contact(email="old@example.com", external_id="crm-1")
    path = write(tmp_path, "crm id,email\ncrm-1,new@example.com\n")

    out, _err = run("contacts", path, "--id-column", "crm id")

    assert "1 updated" in out
    existing.refresh_from_db()
    assert existing.email == "new@example.com"


def test_external_id_and_email_of_two_different_contacts_is_a_row_error(tmp_path: Path) -> None:
    first = make_contact(email="a@example.com", external_id="A")
    make_contact(email="b@example.com", external_id="B")
    path = write(tmp_path, "external_id,email,first_name\nA,b@example.com,Zed\n")

    message, err = refused("contacts", path)

    assert "line 2, column 'email'" in err
    assert f"external id A belongs to contact {first.pk}" in err
    assert "nothing was imported" in message
    first.refresh_from_db()
    assert first.first_name != "Zed"


def test_company_linked_by_domain_then_name_and_created_once_when_absent(tmp_path: Path) -> None:
    acme = make_company(name="Acme", domain="acme.example")
    path = write(
        tmp_path,
        "email,company,company domain\n"
        "a@example.com,ACME Corp,https://www.acme.example/\n"
        "b@example.com,acme,\n"
        "c@example.com,Globex,globex.example\n"
        "d@example.com,GLOBEX,\n",
    )

    out, _err = run("contacts", path)

    assert "Companies created: 1." in out
    by_email = {c.email: c.company for c in Contact.objects.select_related("company")}
    assert by_email["a@example.com"] == acme
    assert by_email["b@example.com"] == acme
    globex = Company.objects.get(name="Globex")
    assert globex.domain == "globex.example"
    assert by_email["c@example.com"] == by_email["d@example.com"] == globex


def test_unknown_owner_is_a_row_error_naming_the_value(tmp_path: Path, maria: Any) -> None:
    path = write(tmp_path, "email,owner\na@example.com,MARIA@example.com\nb@example.com,nobody\n")

    _message, err = refused("contacts", path)

    assert "line 3, column 'owner': no active user has the username or email 'nobody'" in err
    assert not Contact.objects.exists()


def test_map_option_sends_columns_to_fields_properties_or_nowhere(tmp_path: Path) -> None:
    path = write(tmp_path, "Mail,Given,Secret,Tier\na@example.com,Ann,x1,gold\n")

    run(
        "contacts",
        path,
        "--map",
        "Mail=email",
        "--map",
        "given=first_name",
        "--map",
        "Secret=-",
        "--map",
        "Tier=property:customer_tier",
    )

    contact = Contact.objects.get()
    assert (contact.email, contact.first_name) == ("a@example.com", "Ann")
    assert contact.properties == {"customer_tier": "gold"}
    assert list(PropertyDefinition.objects.values_list("name", flat=True)) == ["customer_tier"]


def test_map_to_unknown_field_or_missing_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "email,tier\na@example.com,gold\n")

    message, _err = refused("contacts", path, "--map", "tier=fist_name", "--map", "Nope=email")

    assert "'fist_name' is not a field" in message
    assert "--map names column 'Nope', which the file does not have" in message
    assert nothing_stored()


def test_type_option_overrides_the_inferred_type(tmp_path: Path) -> None:
    path = write(tmp_path, "email,zip,employees\na@example.com,08001,12\nb@example.com,28004,7\n")

    run("contacts", path, "--type", "zip=text")

    types = dict(PropertyDefinition.objects.values_list("name", "type"))
    assert types == {"zip": "text", "employees": "number"}
    assert Contact.objects.get(email="a@example.com").properties == {
        "zip": "08001",
        "employees": 12,
    }


def test_values_that_do_not_fit_an_existing_property_are_row_errors(tmp_path: Path) -> None:
    crm.define_property("contact", "score", "number")
    path = write(tmp_path, "email,score\na@example.com,12\nb@example.com,high\n")

    _message, err = refused("contacts", path)

    assert "line 3, column 'score': 'high' is not a number" in err


def test_a_column_named_id_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,email\n7,a@example.com\n")

    message, _err = refused("contacts", path)

    assert "column 'ID' would become the custom property 'id'" in message
    assert "--id-column" in message
    run("contacts", path, "--id-column", "ID")
    assert Contact.objects.get().external_id == "7"


def test_empty_columns_create_no_property(tmp_path: Path) -> None:
    path = write(tmp_path, "email,Fax,Twitter\na@example.com,,@ann\nb@example.com,,\n")

    out, _err = run("contacts", path)

    assert "column 'Fax' is empty in every row" in out
    assert list(PropertyDefinition.objects.values_list("name", flat=True)) == ["twitter"]


# -- lifecycle history --------------------------------------------------------------------------


def test_stage_names_are_read_in_many_spellings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,lifecycle_stage\n"
        "a@example.com,MQL\nb@example.com,sales qualified lead\nc@example.com,Opportunity\n"
        "d@example.com,EVANGELIST\ne@example.com,Disqualified\nf@example.com,subscriber\n",
    )

    run("contacts", path)

    stages = dict(Contact.objects.values_list("email", "lifecycle_stage"))
    assert stages == {
        "a@example.com": "mql",
        "b@example.com": "sql",
        "c@example.com": "opportunity",
        "d@example.com": "evangelist",
        "e@example.com": "disqualified",
        "f@example.com": "subscriber",
    }


def test_unknown_stage_name_is_a_row_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email,Lifecycle Stage\na@example.com,Lead\nb@example.com,Hot prospect\n"
    )

    _message, err = refused("contacts", path)

    assert "line 3, column 'Lifecycle Stage': 'Hot prospect' is not a lifecycle stage" in err
    assert nothing_stored()


def test_a_stage_without_dates_starts_at_creation_and_contact_ends_in_the_given_stage(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "email,created_at,became_lead_at,became_mql_at,lifecycle_stage\n"
        "a@example.com,2023-06-01,,,customer\n"
        "b@example.com,,2024-01-02,2024-01-09,lead\n",
    )

    run("contacts", path)

    a = Contact.objects.get(email="a@example.com")
    assert list(a.transitions.values_list("from_stage", "to_stage", "changed_at")) == [
        ("", "customer", utc("2023-06-01 00:00"))
    ]
    b = Contact.objects.get(email="b@example.com")
    # Dated history first; the stage the row names was learnt at import time (recycled to lead).
    assert [(t.from_stage, t.to_stage) for t in b.transitions.all()] == [
        ("", "lead"),
        ("lead", "mql"),
        ("mql", "lead"),
    ]
    assert b.lifecycle_stage == "lead" and b.created_at == utc("2024-01-02 00:00")


def test_stage_dates_join_an_existing_contacts_history(tmp_path: Path) -> None:
    contact = make_contact(email="ana@example.com", lifecycle_stage="lead", at=T0)
    journey(contact, stages=[("mql", T0 + dt.timedelta(days=3))])
    path = write(
        tmp_path,
        "email,became_lead_at,became_sql_at\nana@example.com,2024-01-05T09:00:00+00:00,2024-02-01\n",
    )

    run("contacts", path)

    contact.refresh_from_db()
    moves = [(t.from_stage, t.to_stage, t.cause) for t in contact.transitions.all()]
    assert moves == [("", "lead", "manual"), ("lead", "mql", "manual"), ("mql", "sql", "import")]
    assert contact.lifecycle_stage == "sql"
    assert contact.lifecycle_stage_changed_at == utc("2024-02-01 00:00")


def test_a_stage_column_moves_an_existing_contact_with_cause_import(tmp_path: Path) -> None:
    contact = make_contact(email="ana@example.com", lifecycle_stage="sql")
    path = write(tmp_path, "email,lifecycle stage\nana@example.com,Customer\n")

    run("contacts", path)

    contact.refresh_from_db()
    last = contact.transitions.last()
    assert last is not None and (last.from_stage, last.to_stage, last.cause) == (
        "sql",
        "customer",
        "import",
    )
    assert contact.lifecycle_stage == "customer"


def test_a_bad_stage_date_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "email,Became a Customer Date\na@example.com,last spring\n")

    _message, err = refused("contacts", path)

    assert "line 2, column 'Became a Customer Date': 'last spring' is not a date" in err


# -- real-world CSV -----------------------------------------------------------------------------


def test_cp1252_file_with_semicolons_and_decimal_commas() -> None:
    run("contacts", DATA / "excel_es_cp1252.csv")

    jose = Contact.objects.get(email="jose.pena@ejemplo.es")
    assert (jose.first_name, jose.last_name) == ("José", "Peña")
    assert jose.company is not None and jose.company.name == "Cafés del Sur"
    assert jose.properties == {
        "ciudad": "Sevilla",
        "importe": 1234.5,
        "alta": "2024-01-15",
        "nota": "Pagó 5 €",
    }
    assert Contact.objects.get(email="raul@ejemplo.es").properties["nota"] == "—"
    assert Company.objects.filter(name="Cafés del Sur").count() == 1
    assert Company.objects.filter(name="Óptica Ñandú").count() == 1


def test_utf16_tab_separated_file() -> None:
    run("contacts", DATA / "excel_unicode.txt")

    zoe = Contact.objects.get(email="zoe@example.com")
    assert (zoe.first_name, zoe.last_name, zoe.properties) == ("Zoë", "Åberg", {"score": 7})


def test_quoted_newlines_trailing_empty_columns_and_blank_lines() -> None:
    out, _err = run("contacts", DATA / "multiline.csv")

    assert "Imported 3 rows" in out
    notes = dict(Contact.objects.values_list("email", "properties__notes"))
    assert notes["kim@example.com"] == 'Met at the fair.\nAsked for a demo, "soon".'
    assert notes["lee@example.com"] == "Line one\r\nLine two\nLine three"


def test_errors_point_at_the_files_line_numbers_after_multiline_cells(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'email,notes\r\na@example.com,"two\r\nlines"\r\n\r\nnot-an-email,x\r\n',
    )

    _message, err = refused("contacts", path)

    assert "line 5, column 'email': 'not-an-email' is not a valid email address" in err


def test_a_forced_encoding_that_does_not_fit_is_refused_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email,first_name\na@example.com,Ann\nb@example.com,Zoë\n")

    message, _err = refused("contacts", path, "--encoding", "ascii")

    assert "the file is not ascii text" in message
    assert nothing_stored()


def test_utf8_bom_with_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,First Name\r\nann@example.com,Ann\r\n", encoding="utf-8-sig")

    run("contacts", path)

    assert Contact.objects.get().first_name == "Ann"
    assert not PropertyDefinition.objects.exists()  # the BOM did not hide the "Email" header


def test_delimiter_option_overrides_a_wrong_guess(tmp_path: Path) -> None:
    # Header names holding commas: as many commas as tabs, so the guess is a comma.
    path = write(
        tmp_path, "email\tname, given\tname, family\na@example.com\tAnn\tLee\n", name="c.tsv"
    )
    assert CsvSource(path).delimiter == ","

    run("contacts", path, "--delimiter", "tab")

    assert Contact.objects.get().properties == {"name_given": "Ann", "name_family": "Lee"}


def test_progress_bar_reports_both_passes_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "email\n" + "".join(f"p{i}@example.com\n" for i in range(30)))

    run_import("contacts", path, ImportOptions(progress=True))

    progress = capsys.readouterr().err
    assert "Checking contacts.csv" in progress
    assert "Importing contacts" in progress and "30/30" in progress


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b"\r\n\r\n  \r\n", "the file is empty"),
        (b"email,first_name\r\n", "the file has a header row but no data rows"),
        (b"email,name\na@example.com,A\x00B\n", "NUL bytes (the first at byte 26)"),
        (b"PK\x03\x04\x14\x00\x06\x00", "an .xlsx file?"),
        (
            b"Email,Name,E-mail\na@example.com,A,b@example.com\n",
            "columns 1 and 3 have the same name",
        ),
        (b'email,notes\na@example.com,"never closed\n' + b"x" * 140_000, "line 2: the file cannot"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_message(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    message, _err = refused("contacts", path)

    assert problem in message
    assert nothing_stored()


def test_columns_filling_one_field_twice_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,Email Address\na@example.com,b@example.com\n")

    message, _err = refused("contacts", path)

    assert "columns 'Email' and 'Email Address' both fill 'email'" in message


def test_duplicate_emails_in_one_file_name_both_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\nANN@example.com,Annie\n",
    )

    _message, err = refused("contacts", path)

    assert "line 2, column 'email': email ann@example.com appears on line 2 and line 4" in err
    assert "line 4, column 'email': email ann@example.com appears on line 2 and line 4" in err
    assert nothing_stored()


def test_duplicate_external_ids_in_one_file_name_both_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "ref,email\nX-1,a@example.com\nX-1,b@example.com\n")

    _message, err = refused("contacts", path, "--id-column", "ref")

    assert "line 2, column 'ref': external id X-1 appears on line 2 and line 3" in err


def test_invalid_emails_and_overlong_values_are_row_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"email,first_name\nann@@example,Ann\nbob@example.com,{'B' * 200}\n",
    )

    _message, err = refused("contacts", path)

    assert "line 2, column 'email': 'ann@@example' is not a valid email address" in err
    assert "line 3, column 'first_name': the value is 200 characters long; at most 128 fit" in err


def test_row_with_more_values_than_the_header_is_a_row_error(tmp_path: Path) -> None:
    path = write(tmp_path, "email,first_name\na@example.com,Ann,,\nb@example.com,Bob,extra\n")

    _message, err = refused("contacts", path)

    assert "line 3: the row has 3 values but the header names only 2 columns" in err
    assert "line 2" not in err  # empty trailing cells are fine


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "email\n" + "".join(f"p{i}@example.com\n" for i in range(100)))

    with override_settings(EMBUDO_MAX_IMPORT_BYTES=1024):
        message, _err = refused("contacts", path)

    assert "over the import limit of 1.0 KB" in message
    assert "EMBUDO_MAX_UPLOAD_MB" in message


def test_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, "email\na@example.com\n")

    message, _err = refused("leads", path)

    assert "unknown kind 'leads'" in message
    assert "companies, consent, contacts" in message


def test_errors_file_holds_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "email,age\nbad,3\nok@example.com,4\nworse,5\n")
    report = tmp_path / "problems.csv"

    refused("contacts", path, "--errors", str(report))

    with open(report, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["line", "column", "problem"],
        ["2", "email", "'bad' is not a valid email address"],
        ["4", "email", "'worse' is not a valid email address"],
    ]


# -- one transaction ----------------------------------------------------------------------------


def test_a_bad_last_row_leaves_everything_as_it_was(tmp_path: Path) -> None:
    existing = make_contact(email="ann@example.com", job_title="Analyst")
    rows = "".join(f"p{i}@example.com,Engineer,Acme,{i},yes\n" for i in range(2500))
    path = write(
        tmp_path,
        "email,job_title,company,age,vip\nann@example.com,CTO,Acme,40,no\n"
        + rows
        + "oops,x,y,z,w\n",
    )

    message, err = refused("contacts", path)

    assert "line 2503, column 'email'" in err
    assert "1 of 2502 rows have problems, so nothing was imported" in message
    assert list(Contact.objects.all()) == [existing]
    existing.refresh_from_db()
    assert existing.job_title == "Analyst" and existing.properties == {}
    assert not Company.objects.exists()
    assert not PropertyDefinition.objects.exists()
    assert existing.transitions.count() == 1


def test_a_failure_midway_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "WRITE_CHUNK", 10)
    real_insert_rows = importing.insert_rows
    history_writes: list[int] = []

    def insert_rows_failing_in_chunk_two(model: Any, *args: Any, **kwargs: Any) -> Any:
        if model is LifecycleTransition:
            history_writes.append(1)
            if len(history_writes) == 2:  # chunk two: its contacts are in, its history is not
                raise RuntimeError("disk full")
        return real_insert_rows(model, *args, **kwargs)

    monkeypatch.setattr(importing, "insert_rows", insert_rows_failing_in_chunk_two)
    rows = "".join(f"p{i}@example.com,Acme {i % 4},{i}\n" for i in range(50))
    path = write(tmp_path, "email,company,age\n" + rows)

    with pytest.raises(RuntimeError, match="disk full"):
        run("contacts", path)

    assert len(history_writes) == 2
    assert nothing_stored()


def test_skip_invalid_imports_the_valid_rows_and_reports_the_others(tmp_path: Path) -> None:
    path = write(tmp_path, "email,age\na@example.com,1\nnot-valid,2\nb@example.com,3\n")

    out, err = run("contacts", path, "--skip-invalid")

    assert "line 3, column 'email'" in err
    assert "2 created, 0 updated, 0 unchanged, 1 invalid rows skipped" in out
    assert set(Contact.objects.values_list("email", flat=True)) == {
        "a@example.com",
        "b@example.com",
    }


def test_dry_run_reports_what_would_happen_and_writes_nothing(tmp_path: Path) -> None:
    make_contact(email="a@example.com")
    Contact.objects.update(first_name="Before")
    path = write(
        tmp_path,
        "email,first_name,company,became_lead_at\n"
        "a@example.com,After,Acme,2024-01-01\nb@example.com,Bo,Acme,2024-01-02\n",
    )
    audit_before = AuditEntry.objects.count()

    out, _err = run("contacts", path, "--dry-run")

    assert "Dry run, nothing was written" in out
    assert "1 created, 1 updated" in out
    assert "Companies to create: 1." in out
    assert list(Contact.objects.values_list("email", "first_name")) == [("a@example.com", "Before")]
    assert not Company.objects.exists() and not PropertyDefinition.objects.exists()
    assert AuditEntry.objects.count() == audit_before


def test_a_committed_import_leaves_one_audit_entry_with_the_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "email,company\na@example.com,Acme\nb@example.com,Acme\n")

    run("contacts", path)

    entry = AuditEntry.objects.get(action="import")
    assert entry.object_type == "contacts"
    assert entry.changes["created"] == 2 and entry.changes["companies_created"] == 1
    assert entry.changes["file"] == "contacts.csv"
    assert not AuditEntry.objects.filter(action="contact.create").exists()


def test_the_pipeline_hears_of_the_changed_contacts_once_the_import_commits(
    tmp_path: Path, only_reactions: Any, django_capture_on_commit_callbacks: Any
) -> None:
    unchanged = make_contact(email="same@example.com", first_name="Same")
    seen: list[set[int]] = []
    only_reactions(also=[pipeline.Reaction("spy", lambda m: seen.append(m.imported))])
    path = write(tmp_path, "email,first_name\nsame@example.com,Same\nnew@example.com,New\n")

    with django_capture_on_commit_callbacks(execute=True):
        run("contacts", path, "--dry-run")
    assert seen == []
    with django_capture_on_commit_callbacks(execute=True):
        run("contacts", path)

    new = Contact.objects.get(email="new@example.com")
    assert seen == [{new.pk}]
    assert unchanged.pk not in seen[0]


# -- companies ----------------------------------------------------------------------------------


def test_companies_file_creates_companies_with_typed_properties() -> None:
    out, _err = run("companies", DATA / "companies.csv")

    assert "3 created" in out
    acme = Company.objects.get(external_id="ACC-1")
    assert (acme.name, acme.domain, acme.employees, acme.country) == (
        "Acme Iberia",
        "acme-iberia.example",
        250,
        "Spain",
    )
    assert acme.properties == {"plan": "Pro", "founded": "2001-05-01"}
    types = dict(
        PropertyDefinition.objects.filter(object_type="company").values_list("name", "type")
    )
    assert types == {"plan": "text", "founded": "date"}


def test_companies_update_by_external_id_then_domain_then_name(tmp_path: Path) -> None:
    by_id = make_company(name="Old Name", domain="", external_id="C-1")
    by_domain = make_company(name="Initech", domain="initech.example")
    by_name = make_company(name="Umbrella", domain="")
    path = write(
        tmp_path,
        "external_id,name,domain,industry\n"
        "C-1,New Name,,Software\n"
        ",Initech Ltd,initech.example,Consulting\n"
        ",UMBRELLA,,Pharma\n"
        ",Hooli,hooli.example,Search\n",
        name="companies.csv",
    )

    out, _err = run("companies", path)

    assert "1 created, 3 updated" in out
    for company in (by_id, by_domain, by_name):
        company.refresh_from_db()
    assert (by_id.name, by_id.industry) == ("New Name", "Software")
    assert (by_domain.name, by_domain.industry) == ("Initech Ltd", "Consulting")
    assert by_name.industry == "Pharma"
    assert Company.objects.get(domain="hooli.example").name == "Hooli"


def test_ambiguous_company_name_is_a_row_error(tmp_path: Path) -> None:
    make_company(name="Acme", domain="")
    make_company(name="ACME", domain="")
    path = write(tmp_path, "name,industry\nAcme,Retail\n", name="companies.csv")

    _message, err = refused("companies", path)

    assert "line 2, column 'name': 2 companies have the name 'Acme'" in err


def test_bad_employee_count_and_missing_name_are_row_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name,domain,employees\nAcme,acme.example,lots\n,nameless.example,4\n",
        name="companies.csv",
    )

    _message, err = refused("companies", path)

    assert "line 2, column 'employees': 'lots' is not a whole number of employees" in err
    assert (
        "line 3, column 'name': no company matches this row, and a new company needs a name" in err
    )


# -- real data ----------------------------------------------------------------------------------


@pytest.mark.skipif(not DATASETS.exists(), reason=f"the shared data sets are not at {DATASETS}")
def test_uci_bank_marketing_file_imports_as_keyless_contacts_with_typed_properties() -> None:
    path = DATASETS / "uci_bank_marketing" / "bank-additional.csv"

    out, _err = run("contacts", path)

    assert "Imported 4119 rows: 4119 created" in out
    assert Contact.objects.count() == 4119
    assert not Contact.objects.exclude(email=None).exists()
    types = dict(PropertyDefinition.objects.values_list("name", "type"))
    assert types["age"] == "number"
    assert types["y"] in {"boolean", "text"}
    assert types["job"] == "text" and types["emp_var_rate"] == "number"
    first = Contact.objects.order_by("pk").first()
    assert first is not None
    assert first.properties["age"] == 30 and first.properties["job"] == "blue-collar"
    assert first.properties["emp_var_rate"] == -1.8
    subscribed = Contact.objects.filter(properties__y=True).count()
    assert subscribed == 451  # the data set's documented count of "yes" in this sample


# -- the real console script --------------------------------------------------------------------


def _embudo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("embudo")
    assert executable, "the embudo console script is not installed"
    return subprocess.run(
        [executable, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.django_db(transaction=False)
def test_the_embudo_command_imports_and_refuses_bad_files(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
    env["EMBUDO_DATA_DIR"] = str(tmp_path / "data")
    migrated = _embudo(["migrate", "-v0"], env)
    assert migrated.returncode == 0, migrated.stderr
    good = write(tmp_path, "Email,First Name,Lifecycle Stage\nann@example.com,Ann,Lead\n")
    bad = write(tmp_path, "Email,First Name\nbob@example.com,Bob\nnope,Nope\n", name="bad.csv")

    imported = _embudo(["import", "contacts", str(good)], env)
    refused_run = _embudo(["import", "contacts", str(bad)], env)
    exported = _embudo(["export", "contacts"], env)

    assert imported.returncode == 0, imported.stderr
    assert "1 created" in imported.stdout
    assert imported.stderr == ""  # no progress bar when stderr is not a terminal
    assert refused_run.returncode != 0
    assert "line 3, column 'Email': 'nope' is not a valid email address" in refused_run.stderr
    assert "nothing was imported" in refused_run.stderr
    assert "ann@example.com" in exported.stdout and "bob@example.com" not in exported.stdout
