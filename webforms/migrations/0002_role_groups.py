from django.db import migrations

from accounts.roles import sync_role_groups


class Migration(migrations.Migration):
    """Give the role groups the forms permissions named in accounts.roles."""

    dependencies = [
        ("webforms", "0001_initial"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
