"""The per-process caches: what a process keeps for a few seconds (so other processes' changes
reach it late, by design), and one call that empties them all."""

from __future__ import annotations

import pytest

from embudo import caches
from embudo.accounts.actions import create_api_key, revoke_api_key
from embudo.accounts.models import ApiKey
from embudo.tracking import queries
from embudo.tracking.actions import create_site_key, revoke_site_key
from embudo.tracking.keys import cached_api_key
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_every_per_process_cache_is_registered() -> None:
    import embudo.analytics.stamps
    import embudo.scoring.engine
    import embudo.tracking.channels  # noqa: F401 - the modules that keep caches

    assert set(caches.registered()) >= {
        "tracking.api_key_verdicts",
        "tracking.site_keys",
        "tracking.channel_rules",
        "scoring.plans",
        "scoring.plan_rows_sql",
        "scoring.one_contact_sql",
        "analytics.kept_reads",
    }


def test_a_key_revoked_elsewhere_works_until_its_verdict_expires_or_the_caches_are_cleared() -> (
    None
):
    issued = create_api_key("site", ["ingest"], created_by=make_user("admin"))
    assert cached_api_key(issued.secret) is not None
    revoke_api_key(ApiKey.objects.get(pk=issued.key.pk))  # as another server process would

    still_known = cached_api_key(issued.secret)
    caches.clear_all()

    assert still_known is not None
    assert cached_api_key(issued.secret) is None


def test_a_site_key_revoked_elsewhere_is_kept_until_the_caches_are_cleared() -> None:
    site_key = create_site_key("Website", ["https://www.acme.test/"])
    assert queries.live_site_key(site_key.key) is not None
    revoke_site_key(site_key)  # without the settings page, which would forget it here

    still_known = queries.live_site_key(site_key.key)
    caches.clear_all()

    assert still_known is not None
    assert queries.live_site_key(site_key.key) is None
