from django.apps import AppConfig


class BulkConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bulk"
    verbose_name = "Bulk messaging"

    def ready(self) -> None:
        # Connects the start-up check of workers that consume bulk-queue.
        from bulk import checks, worker  # noqa: F401  (checks registers the settings checks)
