"""Admin for bulk jobs: progress, recipients (paginated inline), pause/resume/cancel, report download.

Jobs are created through the API or `manage.py bulk_send_csv` (they need a pre-flight and a
confirmation); the admin watches and steers them. Every action calls bulk.services.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from bulk import services
from bulk.errors import BulkError
from bulk.models import OUTCOME_UNKNOWN, BulkJob, BulkJobChunk, BulkRecipient, JobStatus, RecipientStatus
from bulk.reports import report_urls

STATUS_COLOURS = {
    JobStatus.AWAITING_CONFIRMATION: "#b58900",
    JobStatus.SCHEDULED: "#b58900",
    JobStatus.PENDING: "#666",
    JobStatus.IN_PROGRESS: "#268bd2",
    JobStatus.PAUSED: "#cb4b16",
    JobStatus.COMPLETED: "#2e7d32",
    JobStatus.CANCELLED: "#6c71c4",
    JobStatus.FAILED: "#c62828",
    JobStatus.REJECTED: "#c62828",
}
RECIPIENTS_PER_PAGE = 50
PAGE_PARAM = "recipients_page"


class PaginatedRecipientFormSet(BaseInlineFormSet):
    """Shows one page of a job's recipients (a job may have 100,000)."""

    page_number = 1

    def get_queryset(self):
        if not hasattr(self, "_page_queryset"):
            paginator = Paginator(super().get_queryset().order_by("sequence", "id"), RECIPIENTS_PER_PAGE)
            self.page = paginator.get_page(self.page_number)
            self._page_queryset = self.page.object_list
        return self._page_queryset


class BulkRecipientInline(admin.TabularInline):
    model = BulkRecipient
    formset = PaginatedRecipientFormSet
    template = "admin/bulk/recipient_inline_paginated.html"
    fields = ["sequence", "contact", "address", "status", "error_code", "error_details", "message", "sent_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.page_number = request.GET.get(PAGE_PARAM, 1)
        formset.page_param = PAGE_PARAM
        return formset

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _progress_bar(job: BulkJob) -> str:
    total = job.total_recipients or 0
    done = job.processed_count
    percent = round(100 * done / total) if total else 100
    return format_html(
        '<progress value="{}" max="100" title="{}%"></progress> {} / {} '
        '<span style="color:#666">(sent {}, failed {}, skipped {}, cancelled {})</span>',
        percent,
        percent,
        done,
        total,
        job.sent_count,
        job.failed_count,
        job.skipped_count,
        job.cancelled_count,
    )


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = ["id", "channel", "colored_status", "progress", "created_by", "created_at", "report_link"]
    list_filter = ["status", "channel"]
    list_select_related = ["created_by"]
    search_fields = ["id", "template_name", "content"]
    date_hierarchy = "created_at"
    inlines = [BulkRecipientInline]
    actions = ["pause_jobs", "resume_jobs", "cancel_jobs"]
    readonly_fields = [
        "id",
        "colored_status",
        "status_reason",
        "progress",
        "unknown_count",
        "channel",
        "message_type",
        "content",
        "template_name",
        "template_language",
        "template_parameters",
        "subject",
        "html",
        "origination_phone_number_id",
        "recipient_source",
        "source_details",
        "retry_of",
        "preflight_counts",
        "template_header",
        "template_buttons",
        "media_filename",
        "created_by",
        "confirmed_by",
        "created_at",
        "confirmed_at",
        "started_at",
        "paused_at",
        "resumed_at",
        "cancelled_at",
        "completed_at",
        "report_link",
        "scheduled_for",
        "time_zone",
    ]
    fieldsets = [
        (None, {"fields": ["id", "colored_status", "status_reason", "progress", "unknown_count", "report_link"]}),
        (
            "Message",
            {
                "fields": [
                    "channel",
                    "message_type",
                    "content",
                    "template_name",
                    "template_language",
                    "template_parameters",
                    "template_header",
                    "template_buttons",
                    "media_filename",
                    "subject",
                    "html",
                    "origination_phone_number_id",
                ]
            },
        ),
        ("Recipients", {"fields": ["recipient_source", "source_details", "retry_of", "preflight_counts"]}),
        (
            "History",
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "confirmed_by",
                    "confirmed_at",
                    "scheduled_for",
                    "time_zone",
                    "started_at",
                    "paused_at",
                    "resumed_at",
                    "cancelled_at",
                    "completed_at",
                ]
            },
        ),
    ]

    @admin.display(description="status", ordering="status")
    def colored_status(self, job: BulkJob) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(job.status, "#000"), job.get_status_display()
        )

    @admin.display(description="pre-flight")
    def preflight_counts(self, job: BulkJob) -> str:
        """The pre-flight's figures; its rendered samples (personal data) are on the job page only."""
        figures = {key: value for key, value in (job.preflight or {}).items() if key != "samples"}
        return format_html("<pre>{}</pre>", json.dumps(figures, indent=2, sort_keys=True, default=str))

    @admin.display(description="progress")
    def progress(self, job: BulkJob) -> str:
        return _progress_bar(job)

    @admin.display(description="report")
    def report_link(self, job: BulkJob) -> str:
        if not job.report_s3_key:
            return "—"
        url = reverse("admin:bulk_bulkjob_report", args=[job.pk])
        return format_html('<a href="{}">JSON</a> · <a href="{}?format=csv">CSV</a>', url, url)

    def get_urls(self):
        urls = [
            path(
                "<uuid:job_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="bulk_bulkjob_report",
            )
        ]
        return urls + super().get_urls()

    def report_view(self, request, job_id):
        """Redirect to a fresh pre-signed URL (a link in the page would expire)."""
        job = get_object_or_404(BulkJob, pk=job_id)
        if not self.has_view_permission(request, job):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Viewing bulk job reports needs bulk.view_bulkjob.")
        if not job.report_s3_key:
            self.message_user(request, "This job has no report yet.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:bulk_bulkjob_change", args=[job.pk]))
        urls = report_urls(job)
        return HttpResponseRedirect(urls["csv"] if request.GET.get("format") == "csv" else urls["json"])

    def has_add_permission(self, request):
        return False  # a job needs a pre-flight and a confirmation: the API or `manage.py bulk_send_csv`

    def has_delete_permission(self, request, obj=None):
        return False  # the record of who was sent what stays

    def _run_action(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for job in queryset:
            try:
                service(job_id=job.pk, user=request.user)
                done += 1
            except BulkError as exc:
                refused.append(f"{job.pk}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description="Pause selected jobs", permissions=["change"])
    def pause_jobs(self, request, queryset):
        self._run_action(request, queryset, services.bulk_job_pause, "Paused")

    @admin.action(description="Resume selected jobs", permissions=["send"])
    def resume_jobs(self, request, queryset):
        self._run_action(request, queryset, services.bulk_job_resume, "Resumed")

    @admin.action(description="Cancel selected jobs (remaining recipients are cancelled)", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        self._run_action(request, queryset, services.bulk_job_cancel, "Cancelled")

    def has_send_permission(self, request) -> bool:
        return request.user.has_perms(["bulk.change_bulkjob", "messaging.send_message"])


class OutcomeUnknownFilter(admin.SimpleListFilter):
    title = "outcome unknown"
    parameter_name = "unknown"

    def lookups(self, request, model_admin):
        return (("yes", "Outcome unknown after a crash"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=RecipientStatus.FAILED, error_code=OUTCOME_UNKNOWN)
        return queryset


@admin.register(BulkRecipient)
class BulkRecipientAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "sequence", "contact", "address", "status", "error_code", "sent_at"]
    list_filter = ["status", OutcomeUnknownFilter, "error_code", "job__channel"]
    list_select_related = ["job", "contact"]
    raw_id_fields = ["job", "contact", "message"]
    search_fields = ["address", "=job__id", "=contact__id"]
    show_full_result_count = False  # recipients are many; counting them all is slow
    readonly_fields = [f.name for f in BulkRecipient._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BulkJobChunk)
class BulkJobChunkAdmin(admin.ModelAdmin):
    list_display = [
        "job",
        "sequence",
        "start_sequence",
        "end_sequence",
        "status",
        "attempts",
        "lease_owner",
        "finished_at",
    ]
    list_filter = ["status"]
    raw_id_fields = ["job"]
    readonly_fields = [f.name for f in BulkJobChunk._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
