from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self):
        # The outbound side: rate-limit buckets and tier counters live in DynamoDB tables.
        from messaging import ratelimit, tier  # noqa: F401
