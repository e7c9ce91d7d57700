"""A GIN index on Contact.attributes (PostgreSQL only), and the tag/attribute permissions for the roles.

Segments test "attribute equals" as ``attributes @> '{"city": "Pune"}'``, which this index
(jsonb_path_ops: containment only, and small) answers without reading every contact.
"""

from django.db import migrations

from accounts.roles import sync_role_groups


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS contact_attributes_gin ON contacts_contact "
        "USING gin (attributes jsonb_path_ops) WHERE deleted_at IS NULL"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_attributes_gin")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_tags_and_attributes"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
