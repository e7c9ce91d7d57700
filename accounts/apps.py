from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self):
        # Django reports sign-ins only through its auth signals; this is the one place they are audited.
        from accounts import signals  # noqa: F401
