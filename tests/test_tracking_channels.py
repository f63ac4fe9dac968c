"""Channel classification from UTM parameters and referrers, by the ordered, editable rules."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from embudo.errors import ValidationFailed
from embudo.tracking import actions
from embudo.tracking.channels import RULEBOOK, visit_from
from embudo.tracking.models import ChannelRule

pytestmark = pytest.mark.django_db

seeding = importlib.import_module("embudo.tracking.migrations.0002_default_channel_rules")


@pytest.fixture(autouse=True)
def _default_rules() -> None:
    # Tests that flush the database (live-server tests) also empty the rules the migration
    # seeded; put them back the way the migration does.
    if not ChannelRule.objects.exists():
        seeding.seed(apps, None)


PAGE = "https://www.acme.test/pricing"

# (landing URL, referrer, utm_source, utm_medium, utm_campaign) → channel
CASES = [
    (PAGE, "", "", "", "", "direct"),
    (PAGE, "https://www.acme.test/blog", "", "", "", "direct"),  # internal navigation
    (PAGE, "https://www.google.com/", "", "", "", "organic_search"),
    (PAGE, "https://duckduckgo.com/", "", "", "", "organic_search"),
    (PAGE, "https://www.bing.com/search?q=acme", "", "", "", "organic_search"),
    (PAGE, "", "google", "cpc", "brand", "paid_search"),
    (PAGE, "", "bing", "ppc", "", "paid_search"),
    (PAGE + "?gclid=abc123", "https://www.google.com/", "", "", "", "paid_search"),
    (PAGE + "?msclkid=xyz", "", "", "", "", "paid_search"),
    (PAGE, "", "capterra", "cpc", "", "paid_search"),
    (PAGE, "https://t.co/abc", "", "", "", "organic_social"),
    (PAGE, "https://www.linkedin.com/feed/", "", "", "", "organic_social"),
    (PAGE, "", "facebook", "social", "", "organic_social"),
    (PAGE, "", "linkedin", "paid_social", "q3-launch", "paid_social"),
    (PAGE, "", "facebook", "cpm", "", "paid_social"),
    (PAGE, "", "instagram", "paid", "", "paid_social"),
    (PAGE, "", "newsletter", "email", "march", "email"),
    (PAGE, "", "hubspot", "e-mail", "", "email"),
    (PAGE, "", "email", "", "", "email"),
    (PAGE, "", "partnerstack", "affiliate", "", "affiliate"),
    (PAGE, "", "dv360", "display", "", "display"),
    (PAGE, "", "nytimes", "banner", "", "display"),
    (PAGE, "https://news.ycombinator.com/item?id=1", "", "", "", "referral"),
    (PAGE, "", "partner-blog", "referral", "", "referral"),
    (PAGE, "", "podcast-x", "audio", "", "other"),
]


@pytest.mark.parametrize(("url", "referrer", "source", "medium", "campaign", "channel"), CASES)
def test_default_rules_classify_visits(
    url: str, referrer: str, source: str, medium: str, campaign: str, channel: str
) -> None:
    visit = visit_from(url, referrer, source, medium, campaign, "", "")

    assert RULEBOOK.classify(visit) == channel


def test_the_migration_seeds_the_defaults_as_editable_rules() -> None:
    ChannelRule.objects.all().delete()

    seeding.seed(apps, None)

    rules = list(ChannelRule.objects.values_list("channel", flat=True))

    assert rules[0] == "email" and rules[-1] == "other"
    assert len(rules) >= 10


def test_an_empty_rule_table_classifies_with_the_defaults() -> None:
    ChannelRule.objects.all().delete()

    visit = visit_from(PAGE, "https://www.google.com/", "", "", "", "", "")

    assert RULEBOOK.classify(visit) == "organic_search"


def test_an_admin_rule_placed_first_wins() -> None:
    existing = list(
        ChannelRule.objects.values(
            "channel", "source_pattern", "medium_pattern", "campaign_pattern", "note"
        )
    )
    partner = {"channel": "affiliate", "source_pattern": "^partnerco$", "note": "our partner"}

    actions.save_channel_rules([partner, *existing])

    visit = visit_from(PAGE, "", "partnerco", "cpc", "", "", "")
    assert RULEBOOK.classify(visit) == "affiliate"


def test_a_broken_pattern_is_refused_and_the_rules_stay() -> None:
    before = ChannelRule.objects.count()

    with pytest.raises(ValidationFailed) as failed:
        actions.save_channel_rules([{"channel": "email", "medium_pattern": "(unclosed"}])

    assert "rules.0.medium_pattern" in failed.value.errors
    assert ChannelRule.objects.count() == before


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(ValidationFailed) as failed:
        actions.save_channel_rules([{"channel": "telepathy"}])

    assert "is not one of" in failed.value.errors["rules.0.channel"][0]


def test_reset_brings_back_the_defaults() -> None:
    actions.save_channel_rules([{"channel": "other"}])

    actions.reset_channel_rules()

    assert RULEBOOK.classify(visit_from(PAGE, "https://www.google.com/", "", "", "", "", "")) == (
        "organic_search"
    )
