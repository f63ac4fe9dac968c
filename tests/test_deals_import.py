"""`embudo import deals`: another CRM's export with its own column and stage names, amounts and
dates; unknown stages and bad values reported per row, and nothing half-imported."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from embudo.crm.models import Company, Contact, LifecycleTransition
from embudo.deals import actions
from embudo.deals.importing import parse_deal_datetime, parse_money
from embudo.deals.models import Deal, LostReason
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def write(tmp_path: Path, text: str, name: str = "deals.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import", "deals", *args, "--quiet", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


HUBSPOT = "\n".join(
    [
        "\ufeffRecord ID;Deal Name;Deal Stage;Amount;Close Date;Create Date;Deal owner;"
        "Associated Company;Contact emails;Probability;Last Activity Date",
        "H-1;Acme renewal;closedwon;€1.234,50;31/05/2026;01/04/2026 10:30;{owner};Acme;"
        "ana@acme.example;1;02/05/2026",
        "H-2;Globex pilot;PROPOSAL;1.500,00 €;15/06/2026;03/04/2026;;Globex;;0,5;",
        "H-3;Initech;Closed-Lost;900;20/05/2026;03/03/2026;;Initech;;0;",
        "",
    ]
)


def test_a_hubspot_style_export_with_odd_stage_names_imports(tmp_path: Path) -> None:
    owner = make_user("sales", username="ana.ruiz")
    contact = make_contact(email="ana@acme.example", lifecycle_stage="sql")
    path = write(tmp_path, HUBSPOT.format(owner="ana.ruiz"))

    out, err = run(str(path))

    assert err == ""
    assert "Imported 3 rows: 3 created" in out
    assert "'Probability' is worked out by Embudo" in out
    assert "'Last Activity Date' is not a deal field" in out
    won = Deal.objects.get(external_id="H-1")
    assert (won.status, won.stage.name, won.amount, won.currency) == (
        "won",
        "Won",
        Decimal("1234.50"),
        "EUR",
    )
    assert won.closed_at == dt.datetime(2026, 5, 31, tzinfo=dt.UTC)
    assert won.created_at == dt.datetime(2026, 4, 1, 10, 30, tzinfo=dt.UTC)
    assert won.owner == owner
    assert won.company is not None and won.company.name == "Acme"
    proposal = Deal.objects.get(external_id="H-2")
    assert (proposal.stage.name, proposal.amount, proposal.expected_close_date) == (
        "Proposal",
        Decimal("1500.00"),
        dt.date(2026, 6, 15),
    )
    lost = Deal.objects.get(external_id="H-3")
    assert (lost.status, lost.lost_reason.name) == ("lost", "Not recorded")  # type: ignore[union-attr]
    assert "1 lost deals had no lost reason" in out
    # The contact went through opportunity to customer, both recorded with cause import.
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "customer"
    moves = LifecycleTransition.objects.filter(contact=contact, cause="import")
    assert [(m.to_stage, m.changed_at) for m in moves.order_by("changed_at")] == [
        ("opportunity", dt.datetime(2026, 4, 1, 10, 30, tzinfo=dt.UTC)),
        ("customer", dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
    ]
    assert Company.objects.count() == 3


PIPEDRIVE = "\n".join(
    [
        "Title,Value,Currency,Stage,Status,Expected close date,Won time,Lost time,Lost reason,"
        "Organization,Add time",
        'Big one,"12,500.00",USD,Negotiation,won,2026-06-30,2026-06-02 14:00:00,,,Umbrella,'
        "2026-03-01 09:00:00",
        "Small one,750,EUR,Discovery,lost,2026-06-30,,2026-05-11 08:00:00,Chose a competitor,"
        "Umbrella,2026-03-05 09:00:00",
        'Month-first,"1,000",EUR,Discovery,open,06/30/2026,,,,Hooli,05/13/2026',
        "",
    ]
)


def test_a_pipedrive_style_export_uses_status_and_won_time(tmp_path: Path) -> None:
    actions.set_exchange_rate("USD", "0.9")
    path = write(tmp_path, PIPEDRIVE)

    out, _err = run(str(path))

    assert "Imported 3 rows" in out
    big = Deal.objects.get(name="Big one")
    assert (big.status, big.stage.name, big.amount, big.currency) == (
        "won",
        "Won",
        Decimal("12500.00"),
        "USD",
    )
    assert big.amount_reporting == Decimal("11250.00")
    assert big.closed_at == dt.datetime(2026, 6, 2, 14, tzinfo=dt.UTC)
    small = Deal.objects.get(name="Small one")
    assert small.lost_reason == LostReason.objects.get(name="Chose a competitor")
    assert small.closed_at == dt.datetime(2026, 5, 11, 8, tzinfo=dt.UTC)
    month_first = Deal.objects.get(name="Month-first")
    assert month_first.expected_close_date == dt.date(2026, 6, 30)
    assert "month-first dates" in out


def test_unknown_stages_are_reported_with_the_known_ones_and_nothing_is_imported(
    tmp_path: Path,
) -> None:
    contact = make_contact(email="bo@x.example", lifecycle_stage="lead")
    path = write(
        tmp_path,
        "Deal Name,Deal Stage,Amount,Close Date,Contact emails\n"
        "Good,Proposal,100,2026-06-01,bo@x.example\n"
        "Odd,Appointment Scheduled,100,2026-06-01,\n",
    )

    with pytest.raises(CommandError, match="nothing was imported"):
        run(str(path))

    assert not Deal.objects.exists()
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"


def test_the_row_error_names_the_line_column_and_known_stages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Deal Name,Deal Stage,Amount,Close Date,Currency\n"
        "A,Appointment Scheduled,100,2026-06-01,EUR\n"
        "B,Proposal,about 5k,2026-06-01,EUR\n"
        "C,Proposal,100,2026-02-30,EUR\n"
        "D,Proposal,100,2026-06-01,GBP\n"
        "E,Proposal,100,,EUR\n",
    )
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import", "deals", str(path), "--quiet", stdout=io.StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert (
        "line 2, column 'Deal Stage': 'Appointment Scheduled' is not a stage of pipeline Sales; "
        "its stages are: Qualified, Discovery, Proposal, Negotiation, Won, Lost"
    ) in lines
    assert any(
        line.startswith("line 3, column 'Amount': 'about 5k' is not an amount") for line in lines
    )
    assert any(
        line.startswith("line 4, column 'Close Date': '2026-02-30' is not a date") for line in lines
    )
    assert any("line 5" in line and "no exchange rate from GBP to EUR" in line for line in lines)
    assert any("line 6" in line and "an open deal needs a close date" in line for line in lines)
    assert not Deal.objects.exists()


def test_re_importing_updates_deals_by_external_id(tmp_path: Path) -> None:
    first = write(
        tmp_path, "Deal ID,Deal Name,Stage,Amount,Close Date\nX-1,Alpha,Qualified,100,2026-06-01\n"
    )
    again = write(
        tmp_path,
        "Deal ID,Deal Name,Stage,Amount,Close Date\nX-1,Alpha,Negotiation,150,2026-06-10\n",
        name="again.csv",
    )
    run(str(first))

    out, _err = run(str(again))

    assert "1 updated" in out
    deal = Deal.objects.get(external_id="X-1")
    assert (deal.stage.name, deal.amount, deal.expected_close_date) == (
        "Negotiation",
        Decimal("150.00"),
        dt.date(2026, 6, 10),
    )
    assert [c.to_stage.name for c in deal.stage_changes.order_by("id")] == [
        "Qualified",
        "Negotiation",
    ]
    assert Deal.objects.count() == 1


def test_duplicate_external_ids_in_one_file_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Deal ID,Deal Name,Amount,Close Date\nX-1,A,1,2026-06-01\nX-1,B,2,2026-06-01\n",
    )

    with pytest.raises(CommandError):
        run(str(path))

    assert not Deal.objects.exists()


def test_unknown_contact_emails_are_row_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path, "Deal Name,Amount,Close Date,Contacts\nA,1,2026-06-01,nobody@x.example\n"
    )
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import", "deals", str(path), "--quiet", stdout=io.StringIO(), stderr=err)

    assert "no contact has the email nobody@x.example" in err.getvalue()
    assert not Contact.objects.exists()


def test_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "Deal Name,Amount,Close Date\nA,1,2026-06-01\n")

    out = io.StringIO()
    call_command("import", "deals", str(path), "--dry-run", "--quiet", stdout=out)

    assert "1 created" in out.getvalue()
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("€1.234,50", (Decimal("1234.50"), "EUR")),
        ("1,234.50", (Decimal("1234.50"), None)),
        ("1.234", (Decimal("1234"), None)),
        ("1,5", (Decimal("1.5"), None)),
        ("$ 12,000", (Decimal("12000"), "USD")),
        ("1 234 567,89 EUR", (Decimal("1234567.89"), "EUR")),
        ("USD 99.90", (Decimal("99.90"), "USD")),
        ("1'234.50 CHF", (Decimal("1234.50"), "CHF")),
        ("£700", (Decimal("700"), "GBP")),
        ("0", (Decimal("0"), None)),
    ],
)
def test_amounts_in_the_usual_notations(raw: str, expected: tuple[Decimal, str | None]) -> None:
    assert parse_money(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "-5", "(100)", "1.234.5,6,7", "12e3"])
def test_unparseable_or_negative_amounts_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_money(raw)


@pytest.mark.parametrize(
    ("raw", "day_first", "expected"),
    [
        ("2026-05-31", True, dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
        ("2026-05-31T10:00:00Z", True, dt.datetime(2026, 5, 31, 10, tzinfo=dt.UTC)),
        ("31/05/2026", True, dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
        ("05/31/2026", False, dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
        ("31.05.2026 14:30", True, dt.datetime(2026, 5, 31, 14, 30, tzinfo=dt.UTC)),
        ("May 31, 2026", True, dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
        ("31 May 2026", True, dt.datetime(2026, 5, 31, tzinfo=dt.UTC)),
        ("3/4/26", True, dt.datetime(2026, 4, 3, tzinfo=dt.UTC)),
    ],
)
def test_dates_in_common_formats(raw: str, day_first: bool, expected: dt.datetime) -> None:
    assert parse_deal_datetime(raw, day_first) == expected
