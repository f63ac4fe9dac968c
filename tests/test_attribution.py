"""Attribution over declared journeys: each model equals a hand computation, ties and the
lookback window, contacts without touchpoints, recycled customers, and the Markov chain's
removal effects against an independent computation; the CLI and the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from embudo.analytics.attribution import AttributionRequest, attribution
from embudo.analytics.attribution.journeys import _sorted
from embudo.analytics.funnel import Filters
from embudo.deals import actions as deal_actions
from embudo.deals.models import Deal as DealRow
from tests.factories import make_campaign, make_team
from tests.journeys import T0, Deal, Person, Touch, days, journey, journeys, person

pytestmark = pytest.mark.django_db

PERIOD = {"date_from": days(-1).date(), "date_to": days(1).date()}


def credits(result: Any, model: str, what: str = "conversions") -> dict[str, float]:
    return {
        row.key: round(getattr(row.credit[model], what), 6)
        for row in result.rows
        if getattr(row.credit[model], what)
    }


# Email, organic social, paid search, referral, direct; a €1,000 deal won at T0.
FIVE_TOUCH_CUSTOMER = person(
    at=days(-7),  # a lead after the social touch
    stage="lead",
    touches=[
        Touch("email", days(-10)),
        Touch("organic_social", days(-8)),
        Touch("paid_search", days(-5)),
        Touch("referral", days(-2)),
        Touch("direct", days(-1)),
    ],
    deals=[Deal("1000", opened=days(-4), won=T0)],  # an opportunity after paid search
)


def test_position_models_equal_the_hand_computation() -> None:
    journey(FIVE_TOUCH_CUSTOMER)

    result = attribution(AttributionRequest(**PERIOD))

    assert result.conversions == 1 and result.revenue == 1000.0
    assert credits(result, "first_touch") == {"email": 1.0}
    assert credits(result, "last_touch") == {"direct": 1.0}
    assert credits(result, "linear") == dict.fromkeys(
        ["email", "organic_social", "paid_search", "referral", "direct"], 0.2
    )
    # U: 40 % first, 40 % last, 20 % over the three in between.
    third = round(0.2 / 3, 6)
    assert credits(result, "u_shaped") == {
        "email": 0.4,
        "organic_social": third,
        "paid_search": third,
        "referral": third,
        "direct": 0.4,
    }
    # W: 30 % first, 30 % the last touch before lead creation (organic social), 30 % the last
    # before opportunity creation (paid search), 10 % over the other two.
    assert credits(result, "w_shaped") == {
        "email": 0.3,
        "organic_social": 0.3,
        "paid_search": 0.3,
        "referral": 0.05,
        "direct": 0.05,
    }
    assert credits(result, "w_shaped", "revenue") == {
        "email": 300.0,
        "organic_social": 300.0,
        "paid_search": 300.0,
        "referral": 50.0,
        "direct": 50.0,
    }


def test_time_decay_halves_the_weight_every_half_life() -> None:
    journey(FIVE_TOUCH_CUSTOMER)

    result = attribution(AttributionRequest(**PERIOD, half_life_days=7))

    ages = {"email": 10, "organic_social": 8, "paid_search": 5, "referral": 2, "direct": 1}
    raw = {channel: 2 ** (-age / 7) for channel, age in ages.items()}
    total = sum(raw.values())
    expected = {channel: round(w / total, 6) for channel, w in raw.items()}
    assert credits(result, "time_decay") == expected
    assert math.isclose(sum(credits(result, "time_decay", "revenue").values()), 1000.0)


def test_short_journeys_split_u_and_w_evenly() -> None:
    won = Deal("100", opened=days(-1), won=T0)
    journeys(
        {
            "one touch": person(
                at=days(-9), stage="lead", touches=[Touch("email", days(-3))], deals=[won]
            ),
            "two touches": person(
                at=days(-9),
                stage="lead",
                touches=[Touch("email", days(-3)), Touch("display", days(-2))],
                deals=[won],
            ),
        }
    )

    result = attribution(AttributionRequest(**PERIOD))

    # One touch takes everything; two share half and half under U, and under W the missing
    # lead anchor (lead creation came before every touch) leaves first 30 and opportunity 30.
    assert credits(result, "u_shaped") == {"email": 1.5, "display": 0.5}
    assert credits(result, "w_shaped") == {"email": 1.5, "display": 0.5}


def test_touchpoints_at_the_same_moment_keep_their_recorded_order() -> None:
    journey(
        person(
            at=days(-9),
            stage="lead",
            touches=[
                Touch("paid_social", days(-3)),
                Touch("email", days(-3)),  # same moment, recorded second
                Touch("display", T0),  # at the conversion itself: counts
            ],
            deals=[Deal("10", opened=days(-1), won=T0)],
        )
    )

    result = attribution(AttributionRequest(**PERIOD))

    assert credits(result, "first_touch") == {"paid_social": 1.0}
    assert credits(result, "last_touch") == {"display": 1.0}


def test_lookback_window_leaves_older_touchpoints_out() -> None:
    journey(
        person(
            at=days(-60),
            stage="lead",
            touches=[
                Touch("email", days(-40)),
                Touch("referral", days(-10)),
                Touch("direct", days(1)),  # after the conversion: never counts
            ],
            deals=[Deal("10", opened=days(-1), won=T0)],
        )
    )

    wide = attribution(AttributionRequest(**PERIOD, lookback_days=90))
    narrow = attribution(AttributionRequest(**PERIOD, lookback_days=30))

    assert credits(wide, "first_touch") == {"email": 1.0}
    assert credits(narrow, "first_touch") == {"referral": 1.0}
    assert credits(narrow, "linear") == {"referral": 1.0}


def test_conversions_without_touchpoints_are_counted_apart() -> None:
    journeys(
        {
            "five touches": FIVE_TOUCH_CUSTOMER,
            "silent": person(
                at=days(-5), stage="lead", deals=[Deal("500", opened=days(-2), won=T0)]
            ),
        }
    )

    result = attribution(AttributionRequest(**PERIOD))

    assert (result.conversions, result.unattributed_conversions) == (2, 1)
    assert result.unattributed_revenue == 500.0
    for model in ("first_touch", "linear", "markov"):
        assert math.isclose(sum(credits(result, model).values()), 1.0)
        assert math.isclose(sum(credits(result, model, "revenue").values()), 1000.0)
    table = result.table()
    assert table.rows[-2][0] == "(no touchpoint)" and table.rows[-1][0] == "Total"


def test_a_recycled_customer_converts_again_with_only_the_later_touchpoints() -> None:
    journey(
        person(
            at=days(-30),
            stage="lead",
            stages=[("lead", days(-8))],  # lost, recycled as a lead
            touches=[Touch("email", days(-20)), Touch("paid_search", days(-5))],
            deals=[
                Deal("100", opened=days(-15), won=days(-10)),
                Deal("300", opened=days(-2), won=T0),
            ],
        )
    )

    result = attribution(AttributionRequest(date_from=days(-12).date(), date_to=days(1).date()))

    assert result.conversions == 2
    assert credits(result, "first_touch") == {"email": 1.0, "paid_search": 1.0}
    assert credits(result, "first_touch", "revenue") == {"email": 100.0, "paid_search": 300.0}


def test_deal_revenue_is_split_between_its_contacts_and_converted_to_the_reporting_currency() -> (
    None
):
    deal_actions.set_exchange_rate("USD", "0.5")
    journeys(
        {
            "a": person(
                at=days(-9),
                stage="lead",
                touches=[Touch("email", days(-3))],
                deals=[Deal("1000", opened=days(-1), won=T0, currency="USD", shared_with=["b"])],
            ),
            "b": person(at=days(-9), stage="lead", touches=[Touch("display", days(-3))]),
        }
    )

    result = attribution(AttributionRequest(**PERIOD))

    assert credits(result, "linear", "revenue") == {"email": 250.0, "display": 250.0}


def test_credit_goes_to_campaigns_with_a_row_for_touchpoints_without_one() -> None:
    spring = make_campaign("spring-sale")
    journey(
        person(
            at=days(-9),
            stage="lead",
            touches=[Touch("paid_search", days(-3), spring), Touch("direct", days(-2))],
            deals=[Deal("100", opened=days(-1), won=T0)],
        )
    )

    result = attribution(AttributionRequest(**PERIOD, by="campaign"))

    labels = {row.key: row.label for row in result.rows}
    assert labels == {str(spring.pk): "spring-sale", "": "(no campaign)"}
    assert credits(result, "first_touch") == {str(spring.pk): 1.0}


def test_filters_keep_only_the_journeys_of_the_contacts_in_scope() -> None:
    team, (rep,) = make_team(reps=1)
    people = journeys(
        {
            "ours": person(
                at=days(-9),
                stage="lead",
                original_source="google",
                owner_id=rep.pk,
                touches=[Touch("email", days(-3))],
                deals=[
                    Deal("1000", opened=days(-1), won=T0),
                    Deal("300", opened=days(-1), won=T0, shared_with=["theirs"]),
                ],
            ),
            "theirs": person(
                at=days(-9),
                stage="lead",
                original_source="newsletter",
                touches=[Touch("display", days(-3))],
                deals=[Deal("500", opened=days(-1), won=T0), Deal("50", opened=days(-1), won=T0)],
            ),
            "browsing": person(
                at=days(-9),
                stage="lead",
                original_source="google",
                touches=[Touch("paid_search", T0)],
            ),
        }
    )
    alone = DealRow.objects.get(amount=50)
    alone.contacts.clear()  # revenue without a contact belongs to no filtered view

    everyone = attribution(AttributionRequest(**PERIOD))
    google = attribution(AttributionRequest(**PERIOD, filters=Filters(source="google")))
    by_team = attribution(AttributionRequest(**PERIOD, filters=Filters(team_id=team.pk)))

    assert everyone.conversions == 2 and everyone.revenue == 1800.0
    assert everyone.non_converting_journeys == 1
    assert everyone.revenue_without_conversion == 50.0
    # Half of the shared deal is the filtered contact's.
    assert (google.conversions, google.revenue) == (1, 1150.0)
    assert credits(google, "first_touch") == {"email": 1.0}
    assert google.non_converting_journeys == 1  # the browsing contact's paid search visit
    assert google.revenue_without_conversion == 0.0
    assert (by_team.conversions, by_team.revenue) == (1, 1150.0)
    assert by_team.non_converting_journeys == 0
    assert credits(by_team, "linear", "revenue") == {"email": 1150.0}
    shared = DealRow.objects.get(amount=300)
    assert set(shared.contacts.all()) == {people["ours"], people["theirs"]}


def test_an_empty_period_gives_zeros_not_an_error() -> None:
    result = attribution(AttributionRequest(**PERIOD))

    assert (result.conversions, result.rows) == (0, [])
    assert result.table().rows[-1][0] == "Total"


# -- Markov: against an independent computation -------------------------------------------------

PATHS = [
    (["email", "paid_search"], True),
    (["email"], False),
    (["paid_search", "direct"], True),
    (["direct", "email", "paid_search"], False),
    (["email", "email", "direct"], True),
    (["paid_search"], False),
    (["direct"], True),
]


def declare(paths: list[tuple[list[str], bool]]) -> None:
    """One contact per path, a day between touches; converting ones win a €100 deal at T0."""
    journeys(
        {f"path {i}": walker(channels, converts) for i, (channels, converts) in enumerate(paths)}
    )


def walker(channels: list[str], converts: bool) -> Person:
    return person(
        at=days(-20),
        stage="lead",
        touches=[Touch(c, days(-len(channels) + n - 0.5)) for n, c in enumerate(channels)],
        deals=[Deal("100", opened=days(-0.25), won=T0)] if converts else [],
    )


def removal_effects_by_iteration(paths: list[tuple[list[str], bool]]) -> dict[str, float]:
    """Removal effects from transition counts made by hand and absorption probabilities summed
    over walks of growing length (Σ Qⁿ r), with each channel's row sent to null in turn: a
    different road from the code's one fundamental-matrix inverse."""
    states = sorted({c for p, _ in paths for c in p})
    index = {s: i + 1 for i, s in enumerate(states)}  # 0 is the start
    size = len(states) + 1
    counts = [[0.0] * (size + 2) for _ in range(size)]  # + conversion, null
    for channels, converts in paths:
        walk = [0, *(index[c] for c in channels)]
        for a, b in itertools.pairwise(walk):
            counts[a][b] += 1
        counts[walk[-1]][size if converts else size + 1] += 1

    def p_conversion(removed: int | None) -> float:
        q = np.zeros((size, size))
        r = np.zeros(size)
        for i in range(size):
            total = sum(counts[i])
            if not total or i == removed:
                continue
            q[i] = [counts[i][j] / total for j in range(size)]
            r[i] = counts[i][size] / total
        reach, term = np.zeros(size), r.copy()
        for _ in range(5000):
            reach += term
            term = q @ term
        return float(reach[0])

    base = p_conversion(None)
    return {s: 1 - p_conversion(index[s]) / base for s in states}


def test_markov_removal_effects_equal_an_independent_computation() -> None:
    declare(PATHS)

    result = attribution(AttributionRequest(**PERIOD, models=("markov",)))

    expected = removal_effects_by_iteration(PATHS)
    assert result.removal_effects.keys() == expected.keys()
    for channel, effect in expected.items():
        assert math.isclose(result.removal_effects[channel], effect, abs_tol=1e-6)
    share = {k: v / sum(expected.values()) for k, v in expected.items()}
    conversions = sum(1 for _, c in PATHS if c)
    for row in result.rows:
        assert math.isclose(row.credit["markov"].conversions, share[row.key] * conversions)
    assert result.non_converting_journeys == 3
    assert math.isclose(result.markov_conversion_probability or 0, 4 / 7)


def test_markov_on_a_chain_without_loops_equals_path_enumeration() -> None:
    # Every path is start → a → (b →) end: the probabilities of the four walks can be listed.
    paths = [
        (["display", "email"], True),
        (["display", "email"], False),
        (["display"], True),
        (["email"], False),
    ]
    declare(paths)

    result = attribution(AttributionRequest(**PERIOD, models=("markov",)))

    # start→display 3/4, start→email 1/4; display→email 2/3, display→conv 1/3; email→conv 1/3.
    p = 3 / 4 * 1 / 3 + 3 / 4 * 2 / 3 * 1 / 3 + 1 / 4 * 1 / 3
    without_display = 1 / 4 * 1 / 3
    without_email = 3 / 4 * 1 / 3
    assert math.isclose(result.removal_effects["display"], 1 - without_display / p, abs_tol=1e-6)
    assert math.isclose(result.removal_effects["email"], 1 - without_email / p, abs_tol=1e-6)


# -- outlets ------------------------------------------------------------------------------------


def report(*args: str) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


def test_cli_gives_the_same_numbers_as_table_csv_and_json() -> None:
    journey(FIVE_TOUCH_CUSTOMER)
    dates = ["--from", days(-1).date().isoformat(), "--to", days(1).date().isoformat()]

    as_json = json.loads(report("attribution", *dates, "--format", "json"))
    rows = list(csv.reader(io.StringIO(report("attribution", *dates, "--format", "csv"))))
    table = report("attribution", *dates, "--model", "linear,w_shaped", "--lookback-days", "30")

    by_key = {row["key"]: row for row in as_json["rows"]}
    assert by_key["paid_search"]["models"]["w_shaped"] == {"conversions": 0.3, "revenue": 300.0}
    header = rows[0]
    search = next(r for r in rows if r[0] == "Paid search")
    assert search[header.index("W-shaped: revenue (EUR)")] == "300"
    assert "Linear: conversions" in table and "Markov" not in table
    assert as_json["totals"]["conversions"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "shapley"], "model=shapley is not one of"),
        (["--by", "weather"], "by='weather' is not one of"),
        (["--from", "2026-03-10", "--to", "2026-03-01"], "ends (2026-03-01) before it starts"),
        (["--lookback-days", "soon"], "is not a whole number of days"),
        (["--lookback-days", "0"], "must be between 1 and"),
    ],
)
def test_cli_refuses_bad_options_clearly(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        report("attribution", *args)


def test_api_serves_the_report_and_answers_bad_input_with_422(
    client: Client, logged_in: Any
) -> None:
    journey(FIVE_TOUCH_CUSTOMER)
    logged_in("marketing")
    query = f"from={days(-1).date()}&to={days(1).date()}"

    good = client.get(f"/api/v1/reports/attribution?{query}&model=first_touch&by=channel")
    bad_model = client.get(f"/api/v1/reports/attribution?{query}&model=shapley")
    backwards = client.get("/api/v1/reports/attribution?from=2026-03-10&to=2026-03-01")

    assert good.status_code == 200
    assert good.json()["rows"][0]["models"]["first_touch"]["revenue"] == 1000.0
    assert bad_model.status_code == 422 and "shapley" in bad_model.content.decode()
    assert backwards.status_code == 422 and "before it starts" in backwards.content.decode()


def test_api_and_cli_take_the_dashboard_filters(client: Client, logged_in: Any) -> None:
    journeys(
        {
            "ours": person(
                at=days(-9),
                stage="lead",
                original_source="google",
                touches=[Touch("email", days(-3))],
                deals=[Deal("1000", opened=days(-1), won=T0)],
            ),
            "theirs": person(
                at=days(-9),
                stage="lead",
                original_source="newsletter",
                touches=[Touch("display", days(-3))],
                deals=[Deal("500", opened=days(-1), won=T0)],
            ),
        }
    )
    logged_in("marketing")
    query = f"from={days(-1).date()}&to={days(1).date()}&model=first_touch"

    answer = client.get(f"/api/v1/reports/attribution?{query}&source=newsletter")
    bad_team = client.get(f"/api/v1/reports/attribution?{query}&team=sales")
    printed = report(
        "attribution",
        "--from",
        str(days(-1).date()),
        "--to",
        str(days(1).date()),
        "--source",
        "google",
        "--format",
        "json",
    )

    assert answer.status_code == 200
    assert [row["key"] for row in answer.json()["rows"]] == ["display"]
    assert answer.json()["totals"]["revenue"] == 500.0
    assert answer.json()["request"]["filters"]["source"] == "newsletter"
    assert (
        bad_team.status_code == 422 and "team='sales' is not a team id" in bad_team.content.decode()
    )
    assert json.loads(printed)["totals"]["revenue"] == 1000.0


def test_sales_reps_may_read_attribution_but_not_roi(client: Client, logged_in: Any) -> None:
    logged_in("sales")

    assert client.get("/api/v1/reports/attribution").status_code == 200
    assert client.get("/api/v1/reports/roi").status_code == 403


@pytest.mark.parametrize("span", [10**6, 2**61])  # one 63-bit key, and too wide for one
def test_journey_order_is_contact_then_time_then_id_however_wide_the_times(span: int) -> None:
    rng = np.random.default_rng(3)
    contact = rng.integers(1, 50, 5000)
    time = rng.integers(0, 20, 5000) * (span // 20)
    ids = rng.permutation(5000)

    order = _sorted(contact, time, ids)

    assert (order == np.lexsort((ids, time, contact))).all()


def test_period_borders_follow_the_sites_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"  # UTC+2 in summer
    # 23:30 UTC on 31 May is already 1 June in Madrid.
    late = dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.UTC)
    journey(
        person(
            at=days(-9),
            stage="lead",
            touches=[Touch("email", days(-3))],
            deals=[Deal("100", opened=days(-1), won=late)],
        )
    )

    may = attribution(
        AttributionRequest(date_from=dt.date(2026, 5, 1), date_to=dt.date(2026, 5, 31))
    )
    june = attribution(
        AttributionRequest(date_from=dt.date(2026, 6, 1), date_to=dt.date(2026, 6, 30))
    )

    assert (may.conversions, june.conversions) == (0, 1)
