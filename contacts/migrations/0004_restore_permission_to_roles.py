"""Give the role groups the new contacts.restore_contact permission (Admin has every permission)."""

from django.db import migrations

from accounts.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0003_constraints_and_restore_permission"),
        ("accounts", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
