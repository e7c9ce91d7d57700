"""Bulk Messaging pages: job list, the wizard (recipients → message → pre-flight → confirmation),
and the job page with live progress, pause/resume/cancel, a chart of sends and the report.

Thin: every step calls bulk.services (which runs the safety gate for every recipient).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audiences.models import Segment
from bulk.errors import BulkError
from bulk.models import BulkJob, JobStatus
from bulk.page_selectors import sends_over_time
from bulk.reports import report_urls
from bulk.services import (
    BulkMessage,
    bulk_job_cancel,
    bulk_job_confirm,
    bulk_job_create,
    bulk_job_pause,
    bulk_job_resume,
)
from contacts.models import Channel, Tag
from messaging.page_selectors import approved_templates
from messaging.safety import RefusalCode
from messaging.views import REFUSAL_LEADS
from wecare.pages import page_view, render_page

PAGE_SIZE = 50
CSV_MAX_BYTES = 20 * 1024 * 1024
REASON_WORDS = {code.value: lead for code, lead in REFUSAL_LEADS.items()}


@page_view("bulk.view_bulkjob")
def job_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(BulkJob.objects.select_related("created_by").order_by("-created_at"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render_page(request, "bulk/list.html", {"page": page})


def _message_from(data) -> BulkMessage:
    channel = data.get("channel", "")
    if channel == Channel.WHATSAPP and data.get("kind") == "template":
        template = approved_templates().filter(pk=data.get("template") or None).first()
        parameters = [line.strip() for line in data.get("parameters", "").splitlines() if line.strip()]
        return BulkMessage(
            template_name=template.name if template else "",
            template_language=template.language if template else "",
            template_parameters=parameters,
        )
    if channel == Channel.EMAIL:
        return BulkMessage(subject=data.get("subject", ""), content=data.get("text", ""), html=data.get("html", ""))
    return BulkMessage(content=data.get("text", ""))


@page_view("bulk.add_bulkjob", "messaging.send_message")
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    """The wizard's first two steps on one form: who gets it, and what they get. Submitting runs the
    pre-flight (nothing is sent before it; above the threshold nothing is sent before confirmation)."""
    error = ""
    data = request.POST if request.method == "POST" else request.GET
    if request.method == "POST":
        channel = data.get("channel", "")
        source = data.get("source", "filter")
        recipients: dict = {}
        if source == "csv":
            upload = request.FILES.get("csv")
            if upload is None:
                error = "Choose a CSV file of phone numbers or email addresses."
            elif upload.size > CSV_MAX_BYTES:
                error = f"The file is {upload.size} bytes; the limit is {CSV_MAX_BYTES} (20 MB)."
            else:
                recipients = {"csv_data": upload.read(), "csv_name": upload.name}
        elif source == "segment":
            recipients = {"segment_id": data.get("segment")}
            error = "" if data.get("segment") else "Choose the segment to send to."
        elif source == "tag":
            recipients = {"tag": data.get("tag")}
            error = "" if data.get("tag") else "Choose the tag whose contacts get the message."
        else:
            opt_in = None if data.get("include_not_opted_in") else True
            recipients = {"contact_filter": {"search": data.get("search", ""), "optIn": opt_in}}
        if not error:
            if data.get("kind") == "template" and channel == Channel.WHATSAPP and not data.get("template"):
                error = "Choose the template to send."
            else:
                try:
                    job = bulk_job_create(user=request.user, channel=channel, message=_message_from(data), **recipients)
                except BulkError as exc:
                    job = getattr(exc, "job", None)
                    if job is not None:  # stored as REJECTED: its pre-flight says who and why
                        messages.error(request, str(exc))
                        return redirect("bulk_pages:detail", job_id=job.pk)
                    error = str(exc)
                else:
                    return redirect("bulk_pages:detail", job_id=job.pk)
    return render_page(
        request,
        "bulk/new.html",
        {
            "error": error,
            "form": data,
            "channel": data.get("channel") or Channel.WHATSAPP.value,
            "channels": Channel.choices,
            "templates": approved_templates(),
            "segments": Segment.objects.only("id", "name"),
            "tags": Tag.objects.all(),
            "threshold": settings.BULK_CONFIRMATION_THRESHOLD,
        },
    )


def _job_context(request, job: BulkJob) -> dict:
    preflight = job.preflight or {}
    reasons = [
        {"code": code, "count": count, "words": REASON_WORDS.get(code, "")}
        for code, count in (preflight.get("byReason") or {}).items()
    ]
    may_change = request.user.has_perm("bulk.change_bulkjob")
    return {
        "job": job,
        "preflight": preflight,
        "reasons": reasons,
        "chart": sends_over_time(job),
        "percent": round(100 * job.processed_count / job.total_recipients) if job.total_recipients else 0,
        "to_process": max(job.total_recipients - job.skipped_count, 0),
        "can_confirm": request.user.has_perm("bulk.change_bulkjob") and job.status == JobStatus.AWAITING_CONFIRMATION,
        "can_pause": may_change and job.status in (JobStatus.PENDING, JobStatus.IN_PROGRESS),
        "can_resume": may_change and job.status == JobStatus.PAUSED,
        "can_cancel": may_change
        and job.status in (JobStatus.AWAITING_CONFIRMATION, JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.PAUSED),
        "live": not job.is_finished and job.status != JobStatus.AWAITING_CONFIRMATION,
        "tier_refusal": RefusalCode.TIER_LIMIT.value,
    }


@page_view("bulk.view_bulkjob")
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(BulkJob.objects.select_related("created_by", "confirmed_by"), pk=job_id)
    return render_page(request, "bulk/detail.html", _job_context(request, job))


def _act(request: HttpRequest, job_id, action, done: str, **kwargs) -> HttpResponse:
    job = get_object_or_404(BulkJob, pk=job_id)
    try:
        action(job_id=job.pk, user=request.user, **kwargs)
    except BulkError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("bulk_pages:detail", job_id=job.pk)


@page_view("bulk.change_bulkjob", "messaging.send_message")
@require_POST
def job_confirm(request: HttpRequest, job_id) -> HttpResponse:
    raw = request.POST.get("count", "").strip()
    count = int(raw) if raw.isdigit() else raw  # anything but the exact number is refused by the service
    return _act(request, job_id, bulk_job_confirm, "Confirmed: the job is queued.", count=count)


@page_view("bulk.change_bulkjob")
@require_POST
def job_pause(request: HttpRequest, job_id) -> HttpResponse:
    return _act(request, job_id, bulk_job_pause, "Paused: no new send starts until you resume.")


@page_view("bulk.change_bulkjob", "messaging.send_message")
@require_POST
def job_resume(request: HttpRequest, job_id) -> HttpResponse:
    return _act(request, job_id, bulk_job_resume, "Resumed where it stopped.")


@page_view("bulk.change_bulkjob")
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    return _act(request, job_id, bulk_job_cancel, "Cancelled: the remaining recipients will not be sent to.")


@page_view("bulk.view_bulkjob")
@require_GET
def job_report(request: HttpRequest, job_id) -> HttpResponse:
    job = get_object_or_404(BulkJob, pk=job_id)
    if not job.report_s3_key:
        messages.error(request, "The report is written when the job completes or is cancelled.")
        return redirect("bulk_pages:detail", job_id=job.pk)
    urls = report_urls(job)
    return redirect(urls["csv"] if request.GET.get("format") == "csv" else urls["json"])
