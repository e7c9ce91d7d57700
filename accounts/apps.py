from django.apps import AppConfig
from django.db.models.signals import post_migrate


def sync_roles_after_migrate(sender, using="default", **kwargs):
    """Re-sync the role groups after every ``migrate``.

    The data migrations give the groups their permissions, but an app migrated later
    (django_celery_beat, or any app added after the last of them) brings permissions no migration
    of ours knows about: Admin must have those too. Runs with the global app registry.
    """
    from django.apps import apps

    from accounts.roles import sync_role_groups

    sync_role_groups(apps, using=using)


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self):
        # Django reports sign-ins only through its auth signals; this is the one place they are audited.
        from accounts import signals  # noqa: F401

        # Once per migrate: post_migrate is sent for each app, this listens to accounts' own only;
        # sync_role_groups creates every app's permissions itself, so the order does not matter.
        post_migrate.connect(sync_roles_after_migrate, sender=self, dispatch_uid="accounts.sync_roles_after_migrate")
