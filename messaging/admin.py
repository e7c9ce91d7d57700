"""Admin of the outbound side: messages (read-only, with a send form that goes through the gate),
WhatsApp templates (editable, with a sync from AWS), and the gate's and usage counters (read-only).

The inbound side (InboundEvent, DLQMessage) is registered in messaging.admin_inbound.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.services import audit_record
from messaging.channels import dry_run_now
from messaging.forms import MessageSendForm, WhatsAppTemplateForm
from messaging.models import (
    MediaFile,
    Message,
    MessageStatus,
    MessageUsage,
    ProviderAttempt,
    SafetyRefusalCount,
    VoiceCall,
    WhatsAppTemplate,
)
from messaging.safety import SafetyRefusal
from messaging.selectors import media_presigned_url
from messaging.services import OutgoingMedia, message_send, send_request_build
from messaging.whatsapp_templates import whatsapp_template_sync

STATUS_COLOURS = {
    MessageStatus.QUEUED: "#8a6d3b",
    MessageStatus.SENT: "#1565c0",
    MessageStatus.DELIVERED: "#2e7d32",
    MessageStatus.READ: "#2e7d32",
    MessageStatus.FAILED: "#c62828",
    MessageStatus.RECEIVED: "#455a64",
}


class FailedFilter(admin.SimpleListFilter):
    title = "failed"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return (("yes", "Failed"), ("no", "Not failed"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=MessageStatus.FAILED)
        if self.value() == "no":
            return queryset.exclude(status=MessageStatus.FAILED)
        return queryset


class MediaFileInline(admin.TabularInline):
    model = MediaFile
    extra = 0
    can_delete = False
    fields = ("link", "content_type", "size", "whatsapp_media_id", "uploaded_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="file")
    def link(self, obj: MediaFile):
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', media_presigned_url(obj), obj.s3_key)


class ProviderAttemptInline(admin.TabularInline):
    """Every provider call made for the message (or, in DRY_RUN, not made): read-only evidence."""

    model = ProviderAttempt
    extra = 0
    can_delete = False
    fields = (
        "operation",
        "started_at",
        "duration_ms",
        "outcome",
        "provider_request_id",
        "provider_message_id",
        "error_code",
        "error_text",
    )
    readonly_fields = fields
    ordering = ("started_at", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "contact",
        "channel",
        "direction",
        "message_type",
        "status_badge",
        "error_code",
        "attempts",
    )
    list_filter = ("channel", "status", "dry_run", FailedFilter, "direction", "message_type")
    search_fields = ("id", "provider_message_id", "whatsapp_message_id", "contact__name", "contact__phone")
    list_select_related = ("contact",)
    raw_id_fields = ("contact", "requested_by", "replay_of")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [MediaFileInline, ProviderAttemptInline]

    def get_queryset(self, request):
        # Expired messages are out of every list, the admin's included, before the purge runs.
        return super().get_queryset(request).filter(pk__in=Message.objects.live().values("pk"))

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Message):
        if obj.dry_run:
            return format_html('<strong style="color:#6a1b9a">{} · dry run — not sent</strong>', obj.status)
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(obj.status, "inherit"), obj.get_status_display()
        )

    # --- the send form ---

    def get_urls(self):
        return [
            path("send/", self.admin_site.admin_view(self.send_view), name="messaging_message_send"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_send": request.user.has_perm("messaging.send_message")}
        return super().changelist_view(request, extra_context)

    def send_view(self, request: HttpRequest):
        if not request.user.has_perm("messaging.send_message"):
            request.audit_denial_reason = "sending needs messaging.send_message (Operator or Admin)"
            raise PermissionDenied("Sending messages needs the Operator or Admin role.")
        form = MessageSendForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            upload = data.get("media")
            template = data.get("template")
            try:
                send_request = send_request_build(
                    contact_id=data["contact_id"],
                    channel=data["channel"],
                    text=data["text"],
                    media=OutgoingMedia(
                        content_type=upload.content_type or "", size=upload.size, filename=upload.name, data=upload
                    )
                    if upload
                    else None,
                    media_type=data["media_type"],
                    template_name=template.name if template else "",
                    template_language=template.language if template else "",
                    template_parameters=data["template_parameters"],
                    subject=data["subject"],
                    html=data["html"],
                    origination_phone_number_id=data["origination_phone_number_id"],
                )
                message = message_send(send_request, requested_by=request.user)
            except SafetyRefusal as refusal:
                form.add_error(None, f"Refused ({refusal.code}): {refusal.reason}")
            else:
                self.message_user(request, f"Message {message.pk} queued.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:messaging_message_change", args=[message.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Send a message",
            "form": form,
            "dry_run": dry_run_now(),  # what the provider boundary will do (for the banner only)
        }
        return render(request, "admin/messaging/message/send.html", context)


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(admin.ModelAdmin):
    form = WhatsAppTemplateForm
    list_display = ("name", "language", "category", "status", "parameter_format", "synced_at")
    list_filter = ("status", "category", "language")
    search_fields = ("name", "body")
    readonly_fields = ("parameter_format", "body_parameters", "synced_at", "updated_at")

    def get_urls(self):
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="messaging_whatsapptemplate_sync"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        can_sync = request.user.has_perm("messaging.change_whatsapptemplate")
        return super().changelist_view(request, {**(extra_context or {}), "can_sync": can_sync})

    def sync_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("messaging.change_whatsapptemplate"):
            request.audit_denial_reason = "template sync needs messaging.change_whatsapptemplate"
            raise PermissionDenied("Syncing templates needs the Admin role.")
        try:
            result = whatsapp_template_sync()
        except Exception as exc:  # show it to the Admin rather than a 500
            self.message_user(request, f"Sync failed: {type(exc).__name__}: {exc}", messages.ERROR)
        else:
            audit_record(
                user=request.user, action="templates.sync", resource_type="whatsapptemplate", details=result.as_dict()
            )
            level = messages.WARNING if result.errors else messages.SUCCESS
            self.message_user(
                request,
                f"{result.wabas} WABA(s): {result.created} new, {result.updated} updated, {result.disabled} disabled"
                + (f"; errors: {'; '.join(result.errors)}" if result.errors else ""),
                level,
            )
        return HttpResponseRedirect(reverse("admin:messaging_whatsapptemplate_changelist"))


class ReportAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SafetyRefusalCount)
class SafetyRefusalCountAdmin(ReportAdmin):
    list_display = ("day", "code", "channel", "count")
    list_filter = ("code", "channel")
    date_hierarchy = "day"


@admin.register(MessageUsage)
class MessageUsageAdmin(ReportAdmin):
    list_display = (
        "day",
        "channel",
        "kind",
        "template_name",
        "template_language",
        "category",
        "count",
        "business_initiated",
        "segments",
        "dry_run",
    )
    list_filter = ("channel", "kind", "category", "dry_run")
    date_hierarchy = "day"


@admin.register(VoiceCall)
class VoiceCallAdmin(ReportAdmin):
    """Calls are evidence of what was said to whom: read-only, kept 90 days by the retention purge."""

    list_display = ("created_at", "contact", "destination", "status", "duration_seconds", "voice", "origination")
    list_filter = ("status", "voice")
    list_select_related = ("contact",)
    raw_id_fields = ("contact", "message")
    search_fields = ("destination", "provider_message_id")
    date_hierarchy = "created_at"


# The inbound side's registrations (InboundEvent, DLQMessage) live in their own module.
try:
    from messaging import admin_inbound  # noqa: E402, F401
except ModuleNotFoundError as exc:  # only while that module does not exist yet
    if exc.name != "messaging.admin_inbound":
        raise
