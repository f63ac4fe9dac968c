"""`embudo export contacts|companies`: CSV that other tools read and `embudo import` reads back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from embudo.accounts import actions as accounts
from embudo.crm import actions as crm
from embudo.crm import exporting
from embudo.crm.models import Company, Contact, PropertyDefinition
from tests.factories import make_company, make_contact
from tests.journeys import journey

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "import"
T0 = dt.datetime(2024, 3, 4, 10, 30, tzinfo=dt.UTC)


def days(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def export(kind: str, *args: str) -> str:
    out = io.StringIO()
    call_command("export", kind, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def rows_of(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


@pytest.fixture
def crm_data() -> dict[str, Any]:
    """Two owners, two companies, typed properties and contacts with recycled histories."""
    maria = accounts.create_user("maria", role="sales", email="maria@example.com")
    accounts.create_user("leo", role="sales_manager", email="leo@example.com")
    crm.define_property("contact", "budget", "number")
    crm.define_property("contact", "newsletter", "boolean")
    crm.define_property("contact", "first_seen", "date")
    crm.define_property("contact", "persona_hint", "text")
    crm.define_property("company", "plan", "text")
    acme = make_company(name="Acme Iberia", domain="acme.example", industry="Retail", employees=40)
    make_company(name="Globex", domain="", properties={"plan": "Pro"})
    ana = make_contact(
        email="ana@example.com",
        first_name="Ana",
        last_name="Peña",
        phone="+34 600",
        job_title="CMO",
        company_id=acme.pk,
        owner_id=maria.pk,
        lead_status="connected",
        original_source="google",
        original_medium="cpc",
        original_campaign='spring, "big" sale',
        properties={"budget": 12000.5, "newsletter": True, "first_seen": "2024-01-02"},
        lifecycle_stage="lead",
        at=days(0),
    )
    journey(ana, stages=[("mql", days(2)), ("lead", days(5)), ("mql", days(9)), ("sql", days(10))])
    bo = make_contact(
        email="bo@example.com",
        external_id="crm-2",
        first_name="Bo",
        properties={"newsletter": False, "persona_hint": "Busy\nexecutive"},
        lifecycle_stage="subscriber",
        at=days(1),
    )
    journey(
        bo, stages=[("lead", days(3)), ("mql", days(4)), ("lead", days(6))]
    )  # recycled back to lead
    make_contact(email=None, first_name="Anonymous", last_name="Visitor", at=days(2))
    return {"maria": maria, "ana": ana, "bo": bo, "acme": acme}


def test_contacts_export_has_fields_company_owner_stage_dates_and_properties(
    crm_data: dict[str, Any],
) -> None:
    rows = rows_of(export("contacts"))

    assert len(rows) == 3
    ana = next(r for r in rows if r["email"] == "ana@example.com")
    assert ana["embudo_id"] == str(crm_data["ana"].pk)
    assert (ana["first_name"], ana["last_name"], ana["job_title"]) == ("Ana", "Peña", "CMO")
    assert (ana["company"], ana["company_domain"], ana["owner"]) == (
        "Acme Iberia",
        "acme.example",
        "maria",
    )
    assert (ana["lifecycle_stage"], ana["lead_status"]) == ("sql", "connected")
    assert ana["original_campaign"] == 'spring, "big" sale'
    assert ana["created_at"] == "2024-03-04T10:30:00+00:00"
    # The first time the contact entered each stage, even after moving back.
    assert ana["became_lead_at"] == days(0).isoformat()
    assert ana["became_mql_at"] == days(2).isoformat()
    assert ana["became_sql_at"] == days(10).isoformat()
    assert ana["became_customer_at"] == ""
    assert (ana["budget"], ana["newsletter"], ana["first_seen"]) == (
        "12000.5",
        "true",
        "2024-01-02",
    )
    bo = next(r for r in rows if r["email"] == "bo@example.com")
    assert bo["persona_hint"] == "Busy\nexecutive" and bo["newsletter"] == "false"
    assert bo["external_id"] == "crm-2" and bo["owner"] == "" and bo["company"] == ""
    header = next(csv.reader(io.StringIO(export("contacts"))))
    assert header[-4:] == ["budget", "first_seen", "newsletter", "persona_hint"]


def test_companies_export_has_fields_owner_and_properties(crm_data: dict[str, Any]) -> None:
    rows = rows_of(export("companies"))

    assert [(r["name"], r["domain"], r["employees"], r["plan"]) for r in rows] == [
        ("Acme Iberia", "acme.example", "40", ""),
        ("Globex", "", "", "Pro"),
    ]


def test_export_to_a_file_with_bom_and_semicolons(crm_data: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"

    call_command(
        "export",
        "contacts",
        "--output",
        str(path),
        "--delimiter",
        ";",
        "--bom",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfembudo_id;email;")
    rows = rows_of(raw.decode("utf-8-sig"), delimiter=";")
    assert {(r["first_name"], r["company"]) for r in rows} == {
        ("Ana", "Acme Iberia"),
        ("Bo", ""),
        ("Anonymous", ""),
    }
    assert next(r for r in rows if r["first_name"] == "Ana")["last_name"] == "Peña"


def test_export_reads_in_chunks_without_a_query_per_contact(crm_data: dict[str, Any]) -> None:
    def queries_for_export() -> int:
        with CaptureQueriesContext(connection) as captured:
            export("contacts")
        return len(captured)

    few = queries_for_export()
    for n in range(40):
        make_contact(email=f"more{n}@example.com", company_id=crm_data["acme"].pk)

    assert queries_for_export() == few


def test_export_streams_large_tables_chunk_by_chunk(crm_data: dict[str, Any]) -> None:
    for n in range(25):
        make_contact(email=f"more{n}@example.com")
    out = io.StringIO()
    with CaptureQueriesContext(connection) as captured:
        count = exporting.export_csv("contacts", out, chunk_size=10)

    assert count == 28
    assert len(rows_of(out.getvalue())) == 28
    stage_queries = [q for q in captured if "crm_lifecycletransition" in q["sql"]]
    assert len(stage_queries) == 3  # one per chunk of 10


def test_a_sales_rep_exports_only_the_contacts_they_may_see(crm_data: dict[str, Any]) -> None:
    other_rep = accounts.create_user("sam", role="sales", email="sam@example.com")
    make_contact(email="sams@example.com", owner_id=other_rep.pk)
    out = io.StringIO()

    exporting.export_csv("contacts", out, user=crm_data["maria"])

    emails = {r["email"] for r in rows_of(out.getvalue())}
    assert "ana@example.com" in emails and "sams@example.com" not in emails


def test_unknown_export_kind_lists_the_kinds() -> None:
    with pytest.raises(CommandError, match="unknown kind 'leads'; Embudo can export: companies"):
        export("leads")


@pytest.fixture
def score_columns() -> Iterator[None]:
    """Columns another app adds (as scoring does), one query per chunk."""

    def values(chunk: Sequence[Contact], _headers: Sequence[str]) -> Iterator[list[Any]]:
        for contact in chunk:
            yield [len(contact.email or ""), "champion" if contact.first_name == "Ana" else ""]

    exporting.register_columns(
        "contacts", exporting.ColumnGroup("extra", lambda: ["extra_score", "extra_label"], values)
    )
    yield
    groups = exporting.EXPORTERS["contacts"].groups
    groups[:] = [g for g in groups if g.name != "extra"]


def test_registered_columns_are_exported_before_properties_and_skipped_on_import(
    crm_data: dict[str, Any], score_columns: None, tmp_path: Path
) -> None:
    text = export("contacts")
    header = next(csv.reader(io.StringIO(text)))
    ana = next(r for r in rows_of(text) if r["email"] == "ana@example.com")

    assert header.index("extra_label") < header.index("budget")
    assert (ana["extra_score"], ana["extra_label"]) == ("15", "champion")
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    call_command("import", "contacts", str(path), "--quiet", stdout=out, stderr=io.StringIO())
    assert "column 'extra_score' is computed by Embudo and was not imported" in out.getvalue()
    assert not PropertyDefinition.objects.filter(name__in=["extra_score", "extra_label"]).exists()


def _snapshot() -> dict[str, tuple[Any, ...]]:
    """What a user sees of each contact, independent of database ids."""
    snapshot = {}
    for contact in Contact.objects.select_related("company", "owner"):
        first_entered: dict[str, dt.datetime] = {}
        for move in contact.transitions.order_by("changed_at"):
            first_entered.setdefault(move.to_stage, move.changed_at)
        snapshot[contact.email or contact.full_name] = (
            contact.external_id,
            contact.first_name,
            contact.last_name,
            contact.phone,
            contact.job_title,
            contact.company.name if contact.company else None,
            contact.company.domain if contact.company else None,
            contact.owner.username if contact.owner else None,
            contact.lifecycle_stage,
            contact.lead_status,
            contact.original_source,
            contact.original_medium,
            contact.original_campaign,
            contact.created_at,
            contact.properties,
            first_entered,
        )
    return snapshot


def test_export_then_import_into_an_empty_database_gives_the_same_contacts(
    crm_data: dict[str, Any], tmp_path: Path
) -> None:
    before = _snapshot()
    contact_properties = PropertyDefinition.objects.filter(object_type="contact")
    types_before = dict(contact_properties.values_list("name", "type"))
    path = tmp_path / "contacts.csv"
    call_command(
        "export", "contacts", "--output", str(path), stdout=io.StringIO(), stderr=io.StringIO()
    )
    Contact.objects.all().delete()
    Company.objects.all().delete()
    PropertyDefinition.objects.all().delete()

    out = io.StringIO()
    call_command("import", "contacts", str(path), "--quiet", stdout=out, stderr=io.StringIO())

    assert "3 created" in out.getvalue()
    assert _snapshot() == before
    assert dict(contact_properties.values_list("name", "type")) == types_before


def test_companies_export_then_import_into_an_empty_database(
    crm_data: dict[str, Any], tmp_path: Path
) -> None:
    before = sorted(
        Company.objects.values_list("name", "domain", "industry", "employees", "properties")
    )
    path = tmp_path / "companies.csv"
    call_command(
        "export", "companies", "--output", str(path), stdout=io.StringIO(), stderr=io.StringIO()
    )
    Contact.objects.all().delete()
    Company.objects.all().delete()
    PropertyDefinition.objects.filter(object_type="company").delete()

    call_command("import", "companies", str(path), "--quiet", stdout=io.StringIO())

    after = sorted(
        Company.objects.values_list("name", "domain", "industry", "employees", "properties")
    )
    assert after == before


def _embudo(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
    env["EMBUDO_DATA_DIR"] = str(data_dir)
    executable = shutil.which("embudo")
    assert executable, "the embudo console script is not installed"
    return subprocess.run(
        [executable, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.django_db(transaction=False)
def test_round_trip_between_two_embudo_installations(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for data_dir in (first, second):
        migrated = _embudo(["migrate", "-v0"], data_dir)
        assert migrated.returncode == 0, migrated.stderr
    imported = _embudo(
        [
            "import",
            "contacts",
            str(DATA / "hubspot_contacts.csv"),
            "--id-column",
            "Record ID",
            "--map",
            "Contact owner=-",
        ],
        first,
    )
    assert imported.returncode == 0, imported.stderr
    exported = tmp_path / "export.csv"
    assert _embudo(["export", "contacts", "--output", str(exported)], first).returncode == 0

    again = _embudo(["import", "contacts", str(exported)], second)
    assert again.returncode == 0, again.stderr
    reexported = _embudo(["export", "contacts"], second)

    def comparable(text: str) -> list[dict[str, str]]:
        return [
            {k: v for k, v in row.items() if k not in {"embudo_id", "updated_at"}}
            for row in rows_of(text)
        ]

    assert comparable(reexported.stdout) == comparable(exported.read_text(encoding="utf-8"))
    assert len(comparable(reexported.stdout)) == 4
