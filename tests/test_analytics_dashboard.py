"""The shared dashboard: the same numbers as the CLI, the API and the CSV; every role may open it;
bad filters give messages, not errors; other apps' reports plug in by registering."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from freezegun import freeze_time

from embudo import reports
from embudo.crm.models import TransitionCause
from embudo.reports import ReportSpec, Table
from tests.journeys import journeys, person

pytestmark = pytest.mark.django_db
PERIOD = "from=2026-01-01&to=2026-03-31"


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with freeze_time("2026-04-10 12:00:00"):
        yield


@pytest.fixture(autouse=True)
def _language_reset() -> Iterator[None]:
    # A page request activates its language in this thread (LocaleMiddleware); the tests after
    # this one must not inherit the Spanish of the last request.
    yield
    translation.deactivate()


def at(m: int, d: int) -> dt.datetime:
    return dt.datetime(2026, m, d, 12, tzinfo=dt.UTC)


@pytest.fixture
def quarter() -> None:
    journeys(
        {
            "customer from google": person(
                at=at(1, 1),
                original_source="google",
                stages=[
                    ("lead", at(1, 5)),
                    ("mql", at(1, 10)),
                    ("sql", at(2, 1)),
                    ("opportunity", at(2, 10)),
                    ("customer", at(3, 1)),
                ],
            ),
            "mql from google": person(
                at=at(1, 2),
                original_source="google",
                stages=[("lead", at(1, 6)), ("mql", at(2, 20))],
            ),
            "lead from bing": person(
                at=at(1, 3), original_source="bing", stages=[("lead", at(3, 6))]
            ),
            "imported as sql": person(
                at=at(2, 15),
                stage="sql",
                cause=TransitionCause.IMPORT,
                stages=[("opportunity", at(2, 20))],
            ),
        }
    )


def table(html: str, slug: str) -> list[list[str]]:
    """The rows of one section's table on the page, as the text of each cell."""
    body = re.search(rf'data-testid="table-{slug}">(.*?)</table>', html, re.S)
    assert body, f"no table {slug}"
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
        if "<td" in row
    ]


def cli(*args: str) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


def _plain(value: str) -> str:
    return value.replace(",", "").replace("—", "")


def test_the_page_shows_the_numbers_of_the_cli_and_the_api(
    client: Client, logged_in: Any, quarter: None
) -> None:
    logged_in("admin")
    page = client.get(f"/analytics/?{PERIOD}")
    assert page.status_code == 200
    shown = table(page.content.decode(), "funnel")
    from_cli = list(
        csv.reader(
            io.StringIO(
                cli("funnel", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "csv")
            )
        )
    )
    assert [[_plain(c) for c in row[2:]] for row in shown] == [row[2:] for row in from_cli[1:]]
    # Lead: 3 entered, 2 went on; SQL: 2 entered, one of them imported straight as SQL.
    assert from_cli[1][2:5] == ["3", "0", "2"]
    assert from_cli[3][2:5] == ["2", "1", "2"]
    api = client.get(f"/api/v1/reports/funnel?{PERIOD}").json()
    from_json = json.loads(
        cli("funnel", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "json")
    )
    assert api == from_json
    assert [s["entered"] for s in api["total"]["steps"]] == [3, 2, 2, 2, 1]


def test_velocity_and_kpis_on_the_page_match_the_cli(
    client: Client, logged_in: Any, quarter: None
) -> None:
    logged_in("marketing")
    html = client.get(f"/analytics/?{PERIOD}").content.decode()
    velocity = list(
        csv.reader(
            io.StringIO(
                cli("velocity", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "csv")
            )
        )
    )
    assert [[_plain(c) for c in row[2:]] for row in table(html, "velocity")] == [
        row[2:] for row in velocity[1:]
    ]
    kpis = list(
        csv.reader(
            io.StringIO(
                cli(
                    "kpis",
                    "--from",
                    "2026-01-01",
                    "--to",
                    "2026-03-31",
                    "--breakdown",
                    "source",
                    "--format",
                    "csv",
                )
            )
        )
    )
    assert [[_plain(c) for c in row] for row in table(html, "sources")] == [
        [("Total" if row[0] == "Total" else row[0]), *row[1:]] for row in kpis[1:]
    ]


def test_each_section_links_its_csv_with_the_same_filters(
    client: Client, logged_in: Any, quarter: None
) -> None:
    logged_in("sales_manager")
    html = client.get(f"/analytics/?{PERIOD}&source=google").content.decode()
    link = re.search(r'id="section-funnel".*?href="([^"]+)" data-download="csv"', html, re.S)
    assert link
    url = unescape(link.group(1))
    assert "source=google" in url and "from=2026-01-01" in url
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1][:3] == ["Total", "lead", "2"]  # only the two contacts from google
    json_link = re.search(r'id="section-funnel".*?href="([^"]+)" data-download="json"', html, re.S)
    assert (
        json_link
        and client.get(unescape(json_link.group(1))).json()["total"]["steps"][0]["entered"] == 2
    )


def test_attribution_follows_the_filters_and_roi_says_it_does_not(
    client: Client, logged_in: Any, quarter: None
) -> None:
    logged_in("admin")
    html = unescape(client.get(f"/analytics/?{PERIOD}&source=bing").content.decode())

    def section(slug: str) -> str:
        return html.split(f'data-testid="section-{slug}"')[1].split("</section>")[0]

    assert "Not filtered by" not in section("attribution")
    # Costs are per campaign or channel, so ROI stays whole and says so.
    assert "Not filtered by: source." in section("roi")
    link = re.search(r'id="section-attribution".*?href="([^"]+)" data-download="json"', html, re.S)
    assert link and "source=bing" in link.group(1)
    filtered = client.get(link.group(1)).json()
    assert filtered["request"]["filters"]["source"] == "bing"
    assert filtered["totals"]["conversions"] == 0  # the one customer came from google


@pytest.mark.parametrize("role", ["admin", "marketing", "sales", "sales_manager"])
def test_every_role_opens_the_dashboard_from_the_navigation(
    client: Client, logged_in: Any, role: str
) -> None:
    logged_in(role)
    html = client.get("/analytics/").content.decode()
    assert 'href="/analytics/"' in html and "Dashboard" in html


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get("/analytics/")
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-03-01&to=2026-01-01", "before it starts"),
        ("from=yesterday", "is not a date"),
        ("team=north", "is not a team id"),
    ],
)
def test_bad_filters_show_a_message_not_an_error(
    client: Client, logged_in: Any, query: str, words: str
) -> None:
    logged_in("admin")
    response = client.get(f"/analytics/?{query}")
    assert response.status_code == 200
    assert words in unescape(response.content.decode())


def test_bad_downloads_answer_with_the_reason(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    unknown = client.get("/analytics/reports/horoscope.csv")
    assert unknown.status_code == 404 and "no report named 'horoscope'" in unknown.content.decode()
    bad = client.get("/analytics/reports/funnel.csv?breakdown=zodiac")
    assert bad.status_code == 400 and "breakdown='zodiac'" in bad.content.decode()
    api = client.get("/api/v1/reports/velocity?from=2026-02-01&to=2026-01-01")
    assert api.status_code == 422 and "before it starts" in json.dumps(api.json())


@dataclass
class _SlaResult:
    def to_dict(self) -> dict[str, Any]:
        return {"report": "sla"}

    def table(self) -> Table:
        return Table(["Side", "Attained"], [["Sales", 0.9]])

    def headline(self) -> list[tuple[str, Any]]:
        return [("First touch in time", "93 %")]


@dataclass
class _AttributionResult:
    def to_dict(self) -> dict[str, Any]:
        return {"report": "attribution"}

    def table(self) -> Table:
        return Table(
            ["Channel", "First touch", "Linear"], [["paid_search", 2.0, 1.5], ["email", 1.0, 1.5]]
        )


@pytest.fixture
def plugged_reports() -> Iterator[None]:
    saved = dict(reports._registry())
    for name, result in (("sla", _SlaResult()), ("attribution", _AttributionResult())):
        reports._REPORTS[name] = ReportSpec(name, name, run=lambda _p, r=result: r)  # type: ignore[misc]
    yield
    reports._REPORTS.clear()
    reports._REPORTS.update(saved)


def test_registered_sla_and_attribution_reports_show_on_the_page(
    client: Client, logged_in: Any, plugged_reports: None
) -> None:
    logged_in("admin")
    html = unescape(client.get("/analytics/").content.decode())
    assert "First touch in time" in html and "93 %" in html
    rows = table(html, "attribution")
    assert rows == [["paid_search", "2", "1.5"], ["email", "1", "1.5"]]
    charts = json.loads(
        re.search(r'id="dashboard-charts"[^>]*>(.*?)</script>', html, re.S).group(1)
    )
    assert charts["attribution"]["series"][1] == {"name": "Linear", "values": [1.5, 1.5]}
    # The fake attribution report takes no source option: the page says it is not filtered.
    filtered = unescape(client.get("/analytics/?source=google").content.decode())
    section = filtered.split('data-testid="section-attribution"')[1].split("</section>")[0]
    assert "Not filtered by: source." in section


def test_dashboard_speaks_spanish(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    html = client.get("/analytics/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Embudo" in html and "Velocidad" in html and "Evolución de la conversión" in html
