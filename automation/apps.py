from django.apps import AppConfig


class AutomationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "automation"
    verbose_name = "AI suggested replies"

    def ready(self):
        from automation import checks  # noqa: F401 - registers the automation.E0xx system checks
