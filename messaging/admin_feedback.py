"""Admin of suppressions (messaging.feedback): read-only rows, lifted by an Admin with the "lift" action
(messaging.lift_suppression), which writes the audit log. Rows are never edited or deleted: the
history of why an address was suppressed, and who lifted it, is kept."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from messaging.feedback.suppressions import suppression_lift
from messaging.models import EmailSoftBounce, Suppression


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("lifted", "Lifted"))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.active()
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "channel", "category", "reason", "created_at", "expires_at", "lifted_at", "contact")
    list_filter = (ActiveFilter, "channel", "reason")
    search_fields = ("address",)
    list_select_related = ("contact", "lifted_by")
    raw_id_fields = ("contact",)
    show_full_result_count = False
    actions = ["lift"]
    readonly_fields = [f.name for f in Suppression._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("messaging.lift_suppression"):
            actions.pop("lift", None)
        return actions

    @admin.action(description="Lift the selected suppressions (sending may resume)")
    def lift(self, request: HttpRequest, queryset) -> None:
        lifted = 0
        try:
            for suppression in queryset.filter(lifted_at__isnull=True):
                lifted += suppression_lift(suppression=suppression, actor=request.user, reason="lifted in the admin")
        except PermissionDenied as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, f"{lifted} suppression(s) lifted.", level=messages.SUCCESS)


@admin.register(EmailSoftBounce)
class EmailSoftBounceAdmin(admin.ModelAdmin):
    list_display = ("address", "count", "last_at")
    search_fields = ("address",)
    readonly_fields = ("address", "count", "last_at", "last_detail", "last_event_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
