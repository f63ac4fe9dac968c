"""The demo company's personas and segments: assigned, counted, and meaningful."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time

from embudo.crm.models import Contact
from embudo.demo.seed import seed
from embudo.segments import queries
from embudo.segments.models import PersonaAssignment, Segment
from tests.test_demo import ANCHOR, AS_OF, wipe


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        assert seed(as_of=AS_OF).loaded
        yield
        wipe()


def test_demo_contacts_have_personas_by_their_job_titles(demo: None, db: Any) -> None:
    assert [p.name for p in queries.personas()] == [
        "Marketing leader", "Sales leader", "Executive", "Revenue operations",
    ]  # fmt: skip
    counts = queries.persona_counts()
    assert all(counts.get(p.pk, 0) > 0 for p in queries.personas())
    marketer = PersonaAssignment.objects.filter(persona__name="Marketing leader").first()
    assert marketer is not None and "arketing" in marketer.contact.job_title
    assert PersonaAssignment.objects.count() < Contact.objects.count()


def test_demo_segments_have_members(demo: None, db: Any) -> None:
    with freeze_time(ANCHOR):
        counts = {s.name: queries.segment_count(s) for s in Segment.objects.all()}
    assert set(counts) == {
        "Hot pricing visitors", "Software companies, 50+ people", "Quiet customers",
        "Webinar guests (March)",
    }  # fmt: skip
    assert counts["Webinar guests (March)"] == 40
    assert all(n > 0 for n in counts.values()), counts
