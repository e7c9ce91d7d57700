"""Admin for the inbound side: stored SNS notifications and dead-lettered payloads (with replay).

Registered from MessagingConfig.ready(). Both are read-only records: rows change only through
messaging.inbound and messaging.dlq. Replaying needs ``messaging.replay_dlqmessage`` (Admins).
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from accounts.services import audit_record
from messaging.dlq import dlq_replay
from messaging.models import DLQMessage, InboundEvent

STATUS_COLOURS = {
    "pending": "#8a6d3b",
    "processed": "#2e7d32",
    "failed": "#c62828",
    "replayed": "#2e7d32",
    "parked": "#c62828",
}


def _status_badge(value: str, label: str):
    return format_html('<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(value, "inherit"), label)


def _pretty_json(value) -> str:
    return format_html("<pre style='white-space:pre-wrap;max-width:80em'>{}</pre>", json.dumps(value, indent=2))


class HasErrorFilter(admin.SimpleListFilter):
    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(error="")
        if self.value() == "no":
            return queryset.filter(error="")
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence: nobody, superusers included, adds, edits or deletes it here (the retention purge does)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "sns_message_id", "status_badge", "processed_at", "short_error")
    list_filter = ("status", HasErrorFilter)
    search_fields = ("sns_message_id",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    readonly_fields = (
        "id",
        "sns_message_id",
        "topic_arn",
        "status",
        "error",
        "received_at",
        "processed_at",
        "body_json",
    )
    exclude = ("body",)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: InboundEvent):
        return _status_badge(obj.status, obj.get_status_display())

    @admin.display(description="error")
    def short_error(self, obj: InboundEvent) -> str:
        return obj.error[:120]

    @admin.display(description="body")
    def body_json(self, obj: InboundEvent):
        return _pretty_json(obj.body)


@admin.register(DLQMessage)
class DLQMessageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "queue_name", "original_message_id", "status_badge", "retry_count", "last_attempt_at")
    list_filter = ("queue_name", "status")
    search_fields = ("original_message_id", "id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "id",
        "queue_name",
        "original_message_id",
        "status",
        "retry_count",
        "last_error",
        "last_attempt_at",
        "created_at",
        "expires_at",
        "payload_json",
    )
    exclude = ("payload",)
    actions = ["replay_queues"]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: DLQMessage):
        return _status_badge(obj.status, obj.get_status_display())

    @admin.display(description="payload")
    def payload_json(self, obj: DLQMessage):
        return _pretty_json(obj.payload)

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("messaging.replay_dlqmessage")

    @admin.action(
        description="Replay the dead-letter queue(s) of the selected rows (up to 100 each)", permissions=["replay"]
    )
    def replay_queues(self, request, queryset):
        for queue in sorted(set(queryset.values_list("queue_name", flat=True))):
            try:
                result = dlq_replay(queue)
            except Exception as exc:  # report it to the Admin, who sees the page, rather than a 500
                self.message_user(request, f"{queue}: replay failed: {type(exc).__name__}: {exc}", messages.ERROR)
                continue
            audit_record(
                user=request.user, action="dlq.replay", resource_type="dlq", resource_id=queue, details=result.as_dict()
            )
            level = messages.WARNING if result.failed or result.parked else messages.SUCCESS
            self.message_user(
                request,
                f"{queue}: {result.received} received, {len(result.replayed)} replayed, {len(result.failed)} failed "
                f"again, {len(result.parked)} parked, {result.duplicates} duplicates, "
                f"{result.busy} being replayed elsewhere.",
                level,
            )
