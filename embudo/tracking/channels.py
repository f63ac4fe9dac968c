"""Which channel brought a visit: UTM parameters and the referrer, run through ordered rules.

The inputs are normalised first — source is ``utm_source`` or else the referring site's host,
medium is ``utm_medium`` (or ``cpc`` when an ad click id is in the URL) — and then the admin-edited
:class:`~embudo.tracking.models.ChannelRule` table is tried in order; the first rule whose every
non-blank pattern matches decides.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from cachetools import TTLCache

from embudo import caches
from embudo.tracking.models import Channel, ChannelRule

SEARCH_SITES = (
    r"(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|seznam|ask|"
    r"search\.brave|startpage)(\.|$)"
)
SOCIAL_SITES = (
    r"(^|\.)(facebook|fb|instagram|ig|linkedin|lnkd|twitter|x|t|tiktok|youtube|pinterest|reddit|"
    r"threads|mastodon|bsky|whatsapp|telegram|snapchat|quora|xing)(\.|$)"
)
PAID_MEDIUM = r"^(.*cp[acmv].*|ppc|paid.*|.*[-_ ]paid|retargeting|sem)$"

# (channel, source pattern, medium pattern, campaign pattern, note) in the order they are tried.
# The data migration seeds the table with a frozen copy of this list; "reset to defaults" uses it.
DEFAULT_RULES: tuple[tuple[str, str, str, str, str], ...] = (
    (Channel.EMAIL, "", r"^(e-?mail|newsletter)$", "", "utm_medium email or newsletter"),
    (Channel.EMAIL, r"^(e-?mail|newsletter)$", "", "", "utm_source email or newsletter"),
    (Channel.AFFILIATE, "", r"^affiliates?$", "", "utm_medium affiliate"),
    (Channel.PAID_SOCIAL, SOCIAL_SITES, PAID_MEDIUM, "", "a social site, paid medium"),
    (Channel.PAID_SEARCH, SEARCH_SITES, PAID_MEDIUM, "", "a search engine, paid medium"),
    (Channel.DISPLAY, "", r"^(display|banner|cpm|expandable|interstitial)$", "", "display ads"),
    (Channel.PAID_SEARCH, "", r"^(cpc|ppc|paid[-_ ]?search|sem)$", "", "other cost-per-click"),
    (Channel.ORGANIC_SOCIAL, SOCIAL_SITES, "", "", "a social site, unpaid"),
    (Channel.ORGANIC_SOCIAL, "", r"^(social|social[-_ ]?(network|media)|sm)$", "", "social"),
    (Channel.ORGANIC_SEARCH, SEARCH_SITES, "", "", "a search engine, unpaid"),
    (Channel.ORGANIC_SEARCH, "", r"^organic$", "", "utm_medium organic"),
    (Channel.REFERRAL, "", r"^referral$", "", "utm_medium referral"),
    (Channel.DIRECT, r"^(\(direct\))?$", r"^(\(none\))?$", "", "no source, no medium"),
    (Channel.REFERRAL, ".", r"^$", "", "another site linked here"),
    (Channel.OTHER, "", "", "", "anything else"),
)

# Ad click ids in a landing URL that mean a paid search click when no UTM medium says otherwise.
CLICK_IDS = {"gclid": "google", "gbraid": "google", "wbraid": "google", "msclkid": "bing"}

# The medium recorded when the visit carried none, by channel.
IMPLIED_MEDIUM: dict[str, str] = {
    Channel.ORGANIC_SEARCH: "organic",
    Channel.ORGANIC_SOCIAL: "social",
    Channel.REFERRAL: "referral",
    Channel.DIRECT: "(none)",
}


@dataclass(frozen=True)
class Rule:
    channel: str
    source: re.Pattern[str] | None
    medium: re.Pattern[str] | None
    campaign: re.Pattern[str] | None

    def matches(self, source: str, medium: str, campaign: str) -> bool:
        return (
            (self.source is None or self.source.search(source) is not None)
            and (self.medium is None or self.medium.search(medium) is not None)
            and (self.campaign is None or self.campaign.search(campaign) is not None)
        )


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A rule's pattern, compiled; blank means "anything". Raises ``re.error`` if malformed."""
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def compile_rules(rows: list[tuple[str, str, str, str]]) -> tuple[Rule, ...]:
    return tuple(
        Rule(channel, compile_pattern(source), compile_pattern(medium), compile_pattern(campaign))
        for channel, source, medium, campaign in rows
    )


def classify(source: str, medium: str, campaign: str, rules: tuple[Rule, ...]) -> str:
    """The channel of a visit from its normalised source, medium and campaign."""
    for rule in rules:
        if rule.matches(source, medium, campaign):
            return rule.channel
    return Channel.OTHER


@dataclass(frozen=True)
class Visit:
    """A visit's origin, normalised for classification and for the touchpoint."""

    source: str
    medium: str
    campaign: str
    term: str
    content: str


def host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def visit_from(
    url: str,
    referrer: str,
    utm_source: str,
    utm_medium: str,
    utm_campaign: str,
    utm_term: str,
    utm_content: str,
) -> Visit:
    source = utm_source.strip().lower()
    medium = utm_medium.strip().lower()
    if not source and not medium and has_click_id(url):
        query = parse_qs(urlsplit(url).query)
        for name, engine in CLICK_IDS.items():
            if name in query:
                source, medium = engine, "cpc"
                break
    if not source and referrer:
        referring = host_of(referrer)
        if referring and referring != host_of(url):
            source = referring
    return Visit(source, medium, utm_campaign.strip(), utm_term.strip(), utm_content.strip())


def has_click_id(url: str) -> bool:
    """Whether an ad click id may be in the URL (a cheap test before parsing it)."""
    return "clid=" in url or "clkid=" in url or "braid=" in url


def is_external_referrer(url: str, referrer: str) -> bool:
    if not referrer:
        return False
    referring = host_of(referrer)
    return bool(referring) and referring != host_of(url)


class RuleBook:
    """The channel rules as this process last read them. Edits made here take effect at once
    (``forget``); edits made by another server process within ``ttl`` seconds."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._read: TTLCache[str, tuple[Rule, ...]] = TTLCache(maxsize=1, ttl=ttl)
        # A year of history holds few distinct (source, medium, campaign) triples; millions of
        # events share them. Kept for the rules it was made with (``_memo_rules``).
        self._memo: dict[tuple[str, str, str], str] = {}
        self._memo_rules: tuple[Rule, ...] | None = None

    def rules(self) -> tuple[Rule, ...]:
        with self._lock:
            rules = self._read.get("rules")
        if rules is not None:
            return rules
        rows = list(
            ChannelRule.objects.order_by("position", "id").values_list(
                "channel", "source_pattern", "medium_pattern", "campaign_pattern"
            )
        )
        try:
            compiled = compile_rules(rows) if rows else compile_rules(_defaults())
        except re.error:
            # Patterns are checked when saved; one broken behind our back falls back to
            # the defaults rather than refusing every event.
            compiled = compile_rules(_defaults())
        with self._lock:
            if compiled != self._memo_rules:
                self._memo, self._memo_rules = {}, compiled
            self._read["rules"] = compiled
        return compiled

    def forget(self) -> None:
        with self._lock:
            self._read.clear()
            self._memo, self._memo_rules = {}, None

    def classify(self, visit: Visit) -> str:
        rules = self.rules()
        memo = self._memo
        key = (visit.source, visit.medium, visit.campaign)
        channel = memo.get(key)
        if channel is None:
            channel = classify(visit.source, visit.medium, visit.campaign, rules)
            if len(memo) > 10_000:
                memo.clear()
            memo[key] = channel
        return channel


def _defaults() -> list[tuple[str, str, str, str]]:
    return [(str(c), s, m, k) for c, s, m, k, _note in DEFAULT_RULES]


RULEBOOK = RuleBook()
caches.register("tracking.channel_rules", RULEBOOK.forget)
