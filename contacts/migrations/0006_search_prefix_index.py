"""A C-collated btree on search_text for one- and two-character searches (PostgreSQL only).

Trigrams need three characters, so "wu" matches the start of search_text (the normalised name)
instead: ``(search_text COLLATE "C") LIKE 'wu%' ORDER BY (search_text COLLATE "C")``, which this
index serves in order. The C collation is what lets a plain btree answer LIKE 'prefix%'.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        'CREATE INDEX IF NOT EXISTS contact_search_prefix ON contacts_contact ((search_text COLLATE "C")) '
        "WHERE deleted_at IS NULL"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_search_prefix")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0005_list_order_index")]

    operations = [migrations.RunPython(create_index, drop_index)]
