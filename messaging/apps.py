from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self):
        # Modules that register things at import: DynamoDB tables for bootstrap_aws (inbound claims,
        # outbound rate-limit buckets and tier counters) and the inbound side's admin (InboundEvent,
        # DLQMessage), which lives in its own module.
        from messaging import admin_feedback, admin_inbound, claims, ratelimit, tier  # noqa: F401
