"""PostgreSQL: prefix indexes for the contact search, so a search that matches nothing (or little)
reads three index ranges instead of every contact.

The search (``crm.queries._contact_search``) asks for a first or last name starting with the term,
case-insensitively (Django: ``UPPER(col::text) LIKE UPPER('term%')``), or an email starting with
it (``email::text LIKE 'term%'``). A plain B-tree under a non-C collation cannot answer LIKE, so
these use the pattern operator classes, on the very expressions the ORM writes. SQLite has
nothing to add here, and the operator classes exist only on PostgreSQL: elsewhere this is a no-op.
"""

from django.db import migrations

INDEXES = (
    ("contact_first_name_prefix", '(UPPER("first_name"::text)) text_pattern_ops'),
    ("contact_last_name_prefix", '(UPPER("last_name"::text)) text_pattern_ops'),
    ("contact_email_prefix", '"email" varchar_pattern_ops'),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "crm_contact" ({expression})'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _expression in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_funnel_report_indexes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
