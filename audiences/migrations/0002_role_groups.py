from django.db import migrations

from accounts.roles import sync_role_groups


class Migration(migrations.Migration):
    """Give the role groups the segment permissions named in accounts.roles."""

    dependencies = [
        ("audiences", "0001_initial"),
        ("contacts", "0012_attribute_index_and_roles"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
