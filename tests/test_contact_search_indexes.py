"""The contact search by name or email prefix: same answers everywhere, and on PostgreSQL read
through the prefix indexes of crm migration 0003 rather than a scan of every contact."""

from __future__ import annotations

import pytest
from django.db import connection

from embudo.crm import queries
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

INDEXES = {"contact_first_name_prefix", "contact_last_name_prefix", "contact_email_prefix"}


def search(term: str) -> list[str]:
    rows = queries.contact_rows(queries.SYSTEM, queries.ContactFilter(search=term), limit=50)
    return sorted(contact.email or "" for contact in rows)


@pytest.fixture
def people() -> None:
    make_contact(email="maria.garcia@alba.es", first_name="María", last_name="García")
    make_contact(email="marco.ruiz@nexo.es", first_name="Marco", last_name="Ruiz")
    make_contact(email="ana.martin@faro.es", first_name="Ana", last_name="Martín")
    make_contact(email="james.smith@summit.com", first_name="James", last_name="Smith")


def test_search_matches_name_prefixes_in_any_case(people: None) -> None:
    assert search("MAR") == [
        "ana.martin@faro.es",
        "marco.ruiz@nexo.es",
        "maria.garcia@alba.es",
    ]


def test_search_matches_full_name_and_email_start(people: None) -> None:
    assert search("maría garc") == ["maria.garcia@alba.es"]
    assert search("james.s") == ["james.smith@summit.com"]
    assert search("Marco.Ruiz@") == ["marco.ruiz@nexo.es"]


def test_search_with_no_match_answers_nothing(people: None) -> None:
    assert search("zzz") == []


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the prefix indexes exist on PostgreSQL only"
)
def test_postgres_search_reads_the_prefix_indexes(people: None) -> None:
    # Given the indexes are there, when the planner may not scan the table, then each branch of
    # the search (first name, last name, email) is answered by its index: the expressions of the
    # indexes are the very ones the ORM writes.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'crm_contact'")
        assert {row[0] for row in cursor.fetchall()} >= INDEXES
        query = queries.contact_list(queries.SYSTEM, queries.ContactFilter(search="zzz"))
        sql, params = query.order_by().values("id").query.sql_with_params()
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in INDEXES:
        assert index in plan, plan
