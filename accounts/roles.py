"""The three roles and what each may do. The same groups govern the admin, the API and the pages."""

from __future__ import annotations

VIEWER = "Viewer"
OPERATOR = "Operator"
ADMIN = "Admin"
ROLES = (VIEWER, OPERATOR, ADMIN)  # lowest to highest

VIEWER_PERMISSIONS = [
    "contacts.view_contact",
    "contacts.view_consentevent",
    "messaging.view_message",
    "messaging.view_mediafile",
    "messaging.view_voicecall",
    "messaging.view_whatsapptemplate",
    "bulk.view_bulkjob",
    "bulk.view_bulkrecipient",
    "automation.view_aisuggestion",
    "contacts.view_tag",
    "contacts.view_attributedefinition",
    "audiences.view_segment",
    "links.view_shortlink",
    "links.view_click",
    "webforms.view_form",
    "webforms.view_formversion",
    "webforms.view_formsubmission",
]
OPERATOR_PERMISSIONS = VIEWER_PERMISSIONS + [
    "contacts.add_contact",
    "contacts.change_contact",
    "contacts.delete_contact",
    "contacts.export_contact",
    "messaging.send_message",
    "bulk.add_bulkjob",
    "bulk.change_bulkjob",
    "automation.change_aisuggestion",
    "contacts.add_tag",
    "audiences.add_segment",
    "audiences.change_segment",
    "audiences.delete_segment",
    "links.add_shortlink",
    "links.change_shortlink",
    "webforms.add_form",
    "webforms.change_form",
    "webforms.export_formsubmission",
]
# Admin: every permission there is, including users and system configuration.
ROLE_PERMISSIONS = {VIEWER: VIEWER_PERMISSIONS, OPERATOR: OPERATOR_PERMISSIONS, ADMIN: None}


def sync_role_groups(apps, schema_editor=None, *, using: str | None = None) -> None:
    """Create the role groups and give each its permissions. Idempotent.

    Called from data migrations (each app that adds permissions adds one that calls this),
    so a fresh database has complete roles right after ``migrate``. Permissions are normally
    created after all migrations, so this creates the ones it needs first.
    """
    from django.contrib.auth.management import create_permissions
    from django.db import DEFAULT_DB_ALIAS

    using = using or (schema_editor.connection.alias if schema_editor is not None else DEFAULT_DB_ALIAS)
    for app_config in apps.get_app_configs():
        # Migration-state registries have no models modules, and create_permissions skips apps
        # without one; the global registry (post_migrate) has them and must keep them.
        previous = getattr(app_config, "models_module", None)
        if previous is None:
            app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = previous

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        if codes is None:
            perms = list(Permission.objects.using(using).all())
        else:
            perms = []
            for code in codes:
                app_label, codename = code.split(".")
                perm = (
                    Permission.objects.using(using).filter(content_type__app_label=app_label, codename=codename).first()
                )
                if perm is not None:  # the app that owns it may not be migrated yet
                    perms.append(perm)
        group.permissions.set(perms)
