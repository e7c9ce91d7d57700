"""Trigram index for partial, case-insensitive search on PostgreSQL (a no-op on SQLite).

Search is ``search_text LIKE '%term%'``; a GIN trigram index keeps that fast at a million rows.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS contact_search_trgm ON contacts_contact "
        "USING gin (search_text gin_trgm_ops) WHERE deleted_at IS NULL"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
