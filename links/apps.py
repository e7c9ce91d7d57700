from django.apps import AppConfig


class LinksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "links"
    verbose_name = "Links"

    def ready(self) -> None:
        # Personal-link clicks are a step of every bulk job's funnel (bulk.funnel).
        from bulk.funnel import funnel_rows_register
        from links.selectors import funnel_clicked_rows

        funnel_rows_register(funnel_clicked_rows)
