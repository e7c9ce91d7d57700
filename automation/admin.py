"""Admin of the AI suggestions (read-only but for the decision fields), the switches and the local
knowledge base (Admins), with a Markdown/CSV import. Every change goes through automation.services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from accounts.services import audit_record
from automation import services
from automation.knowledge import KnowledgeImportError, knowledge_import
from automation.models import AIConfig, AINumberSwitch, AISuggestion, KnowledgeEntry, SuggestionStatus
from messaging.safety import SafetyRefusal

DECISION_FIELDS = ("reject_reason", "feedback_rating", "feedback_comment")


@admin.register(AISuggestion)
class AISuggestionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "contact", "channel", "source", "status", "decided_by", "feedback_rating")
    list_filter = ("status", "source", "channel", "feedback_rating")
    list_select_related = ("contact", "decided_by")
    search_fields = ("query", "response")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["approve_as_drafted"]
    fields = (
        "id", "status", "contact", "channel", "origination_phone_number_id", "inbound_message", "query",
        "knowledge_context", "response", "edited_text", "source", "score", "model", "tokens_used", "flags",
        "guardrail_traces", "error", "reply_by", "decided_by", "decided_at", "sent_message", *DECISION_FIELDS,
        "feedback_by", "feedback_at", "created_at", "expires_at",
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.fields if f not in DECISION_FIELDS]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # kept 90 days, then purged

    def save_model(self, request, obj, form, change):
        """The decision fields are applied by the services (audited), never saved as typed."""
        data = form.cleaned_data
        try:
            if "reject_reason" in form.changed_data and data["reject_reason"].strip():
                services.suggestion_reject(suggestion_id=obj.pk, user=request.user, reason=data["reject_reason"])
            if {"feedback_rating", "feedback_comment"} & set(form.changed_data) and data["feedback_rating"]:
                services.suggestion_feedback(
                    suggestion_id=obj.pk,
                    user=request.user,
                    rating=data["feedback_rating"],
                    comment=data["feedback_comment"],
                )
        except services.SuggestionError as exc:
            messages.error(request, exc.message)

    @admin.action(description="Approve as drafted and send (through the safety gate)", permissions=["change"])
    def approve_as_drafted(self, request, queryset):
        sent = 0
        for suggestion in queryset.filter(status=SuggestionStatus.PENDING):
            try:
                services.suggestion_approve(suggestion_id=suggestion.pk, user=request.user)
                sent += 1
            except (services.SuggestionError, SafetyRefusal) as exc:
                messages.warning(request, f"{suggestion}: {getattr(exc, 'message', None) or exc}")
        self.message_user(request, f"{sent} approved.")


class SwitchAuditMixin:
    def has_delete_permission(self, request, obj=None):
        return False  # turn off instead: the switch keeps who changed it


@admin.register(AIConfig)
class AIConfigAdmin(SwitchAuditMixin, admin.ModelAdmin):
    list_display = ("__str__", "paused_until", "consecutive_failures", "updated_by", "updated_at")
    fields = ("enabled", "paused_until", "consecutive_failures", "updated_by", "updated_at")
    readonly_fields = ("paused_until", "consecutive_failures", "updated_by", "updated_at")
    actions = ["resume_now"]

    @admin.action(description="Resume AI now (end a circuit-breaker pause)", permissions=["change"])
    def resume_now(self, request, queryset):
        services.ai_resume(user=request.user)
        self.message_user(request, "AI resumed.")

    def has_add_permission(self, request):
        return request.user.has_perm("automation.add_aiconfig") and not AIConfig.objects.exists()

    def save_model(self, request, obj, form, change):
        services.ai_switch_set(user=request.user, enabled=obj.enabled)


@admin.register(AINumberSwitch)
class AINumberSwitchAdmin(SwitchAuditMixin, admin.ModelAdmin):
    list_display = ("phone_number_id", "enabled", "updated_by", "updated_at")
    readonly_fields = ("updated_by", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return ("phone_number_id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        services.ai_switch_set(user=request.user, enabled=obj.enabled, phone_number_id=obj.phone_number_id)


class KnowledgeImportForm(forms.Form):
    file = forms.FileField(
        help_text="Markdown (a heading per question, the answer under it) or CSV (question, answer, tags)."
    )
    replace = forms.BooleanField(required=False, help_text="Delete every current entry first.")


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ("question", "tags", "updated_at")
    search_fields = ("question", "answer", "tags")
    change_list_template = "admin/automation/knowledgeentry/change_list.html"

    def get_urls(self):
        custom = [
            path("import/", self.admin_site.admin_view(self.import_view), name="automation_knowledgeentry_import")
        ]
        return custom + super().get_urls()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            user=request.user,
            action="automation.knowledge_change" if change else "automation.knowledge_add",
            resource_type="knowledge_entry",
            resource_id=obj.pk,
        )

    def delete_model(self, request, obj):
        audit_record(user=request.user, action="automation.knowledge_delete", resource_type="knowledge_entry",
                     resource_id=obj.pk)  # fmt: skip
        super().delete_model(request, obj)

    def import_view(self, request: HttpRequest):
        if not request.user.has_perm("automation.add_knowledgeentry"):
            request.audit_denial_reason = f"{request.user.role} lacks automation.add_knowledgeentry"
            raise PermissionDenied
        form = KnowledgeImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > settings.AI_KB_IMPORT_MAX_BYTES:
                form.add_error("file", f"The file is larger than {settings.AI_KB_IMPORT_MAX_BYTES} bytes.")
            else:
                try:
                    count = knowledge_import(
                        data=upload.read(settings.AI_KB_IMPORT_MAX_BYTES + 1),
                        filename=upload.name or "",
                        user=request.user,
                        replace=form.cleaned_data["replace"],
                    )
                except KnowledgeImportError as exc:
                    form.add_error("file", str(exc))
                else:
                    self.message_user(request, f"{count} entries imported.")
                    return HttpResponseRedirect(reverse("admin:automation_knowledgeentry_changelist"))
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Import the knowledge base"}  # fmt: skip
        return render(request, "admin/automation/knowledgeentry/import.html", context)
