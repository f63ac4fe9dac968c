"""Seed the channel rules with sensible defaults an admin can then edit."""

from django.db import migrations

SEARCH_SITES = (
    r"(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|seznam|ask|"
    r"search\.brave|startpage)(\.|$)"
)
SOCIAL_SITES = (
    r"(^|\.)(facebook|fb|instagram|ig|linkedin|lnkd|twitter|x|t|tiktok|youtube|pinterest|reddit|"
    r"threads|mastodon|bsky|whatsapp|telegram|snapchat|quora|xing)(\.|$)"
)
PAID_MEDIUM = r"^(.*cp[acmv].*|ppc|paid.*|.*[-_ ]paid|retargeting|sem)$"

# A frozen copy of embudo.tracking.channels.DEFAULT_RULES as it stood when this ran.
DEFAULT_RULES = (
    ("email", "", r"^(e-?mail|newsletter)$", "", "utm_medium email or newsletter"),
    ("email", r"^(e-?mail|newsletter)$", "", "", "utm_source email or newsletter"),
    ("affiliate", "", r"^affiliates?$", "", "utm_medium affiliate"),
    ("paid_social", SOCIAL_SITES, PAID_MEDIUM, "", "a social site, paid medium"),
    ("paid_search", SEARCH_SITES, PAID_MEDIUM, "", "a search engine, paid medium"),
    ("display", "", r"^(display|banner|cpm|expandable|interstitial)$", "", "display ads"),
    ("paid_search", "", r"^(cpc|ppc|paid[-_ ]?search|sem)$", "", "other cost-per-click"),
    ("organic_social", SOCIAL_SITES, "", "", "a social site, unpaid"),
    ("organic_social", "", r"^(social|social[-_ ]?(network|media)|sm)$", "", "social"),
    ("organic_search", SEARCH_SITES, "", "", "a search engine, unpaid"),
    ("organic_search", "", r"^organic$", "", "utm_medium organic"),
    ("referral", "", r"^referral$", "", "utm_medium referral"),
    ("direct", r"^(\(direct\))?$", r"^(\(none\))?$", "", "no source, no medium"),
    ("referral", ".", r"^$", "", "another site linked here"),
    ("other", "", "", "", "anything else"),
)


def seed(apps, schema_editor):
    ChannelRule = apps.get_model("tracking", "ChannelRule")
    if ChannelRule.objects.exists():
        return
    ChannelRule.objects.bulk_create(
        ChannelRule(
            position=(i + 1) * 10,
            channel=channel,
            source_pattern=source,
            medium_pattern=medium,
            campaign_pattern=campaign,
            note=note,
        )
        for i, (channel, source, medium, campaign, note) in enumerate(DEFAULT_RULES)
    )


def unseed(apps, schema_editor):
    apps.get_model("tracking", "ChannelRule").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
