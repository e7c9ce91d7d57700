"""Bulk Messaging pages: job list, the wizard (recipients → message → pre-flight → confirmation),
and the job page with live progress, pause/resume/cancel, a chart of sends and the report.

Thin: every step calls bulk.services (which runs the safety gate for every recipient).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.services import audit_record
from audiences.models import Segment
from bulk import funnel
from bulk.errors import BulkError
from bulk.models import BulkJob, JobStatus
from bulk.page_selectors import quiet_waiting, sends_over_time
from bulk.pricing import job_running_cost
from bulk.reports import report_urls
from bulk.scheduling import bulk_job_reschedule, business_time_zone, local_time
from bulk.services import (
    BulkMessage,
    bulk_job_cancel,
    bulk_job_confirm,
    bulk_job_create,
    bulk_job_pause,
    bulk_job_resume,
    bulk_media,
    bulk_message_preview,
)
from contacts.attributes import attribute_definitions
from contacts.models import Channel, Tag
from links.selectors import bulk_job_clicks
from messaging.channels import whatsapp as whatsapp_channel
from messaging.page_selectors import approved_templates
from messaging.safety import RefusalCode
from messaging.views import REFUSAL_LEADS
from wecare.pages import page_view, render_fragment, render_page

PAGE_SIZE = 50
CSV_MAX_BYTES = 20 * 1024 * 1024
REASON_WORDS = {code.value: lead for code, lead in REFUSAL_LEADS.items()}


@page_view("bulk.view_bulkjob")
def job_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(BulkJob.objects.select_related("created_by").order_by("-created_at"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render_page(request, "bulk/list.html", {"page": page})


BUTTON_FIELDS = 3  # the wizard's button parameter fields (the API takes any index)


def _message_from(data, files) -> BulkMessage:
    """The message of the chosen channel and kind only: fields of other kinds are ignored."""
    channel, kind = data.get("channel", ""), data.get("kind", "text")
    if channel == Channel.WHATSAPP and kind == "template":
        template = approved_templates().filter(pk=data.get("template") or None).first()
        parameters = [line.strip() for line in data.get("parameters", "").splitlines() if line.strip()]
        buttons = {str(i): data.get(f"button_{i}", "").strip() for i in range(BUTTON_FIELDS)}
        return BulkMessage(
            template_name=template.name if template else "",
            template_language=template.language if template else "",
            template_parameters=parameters,
            template_header=data.get("header", "").strip(),
            template_buttons={index: value for index, value in buttons.items() if value},
            media=bulk_media(files.get("media")),
        )
    if channel == Channel.WHATSAPP and kind == "media":
        return BulkMessage(content=data.get("text", ""), media=bulk_media(files.get("media")))
    if channel == Channel.EMAIL:
        return BulkMessage(subject=data.get("subject", ""), content=data.get("text", ""), html=data.get("html", ""))
    return BulkMessage(content=data.get("text", ""))


def _wizard_input(request: HttpRequest, data) -> tuple[dict, str]:
    """The recipients of the wizard's form (as bulk_job_create takes them) and the first input error."""
    channel, source, error = data.get("channel", ""), data.get("source", "filter"), ""
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
        kind = data.get("kind") if channel == Channel.WHATSAPP else ""
        media = request.FILES.get("media")
        if kind == "template" and not data.get("template"):
            error = "Choose the template to send."
        elif kind == "media" and media is None:
            error = "Choose the image, video or document to send."
        elif media is not None and media.size > whatsapp_channel.MEDIA_MAX_BYTES:
            error = f"The file is {media.size} bytes; the largest WhatsApp file is 100 MB."
    return recipients, error


@page_view("bulk.add_bulkjob", "messaging.send_message")
@require_POST
def job_preview(request: HttpRequest) -> HttpResponse:
    """The wizard's preview (htmx): the message rendered for three of the chosen recipients. No job
    is created and nothing is stored or sent."""
    recipients, error = _wizard_input(request, request.POST)
    preview: dict = {}
    if not error:
        try:
            preview = bulk_message_preview(
                user=request.user,
                channel=request.POST.get("channel", ""),
                message=_message_from(request.POST, request.FILES),
                **recipients,
            )
        except BulkError as exc:
            error = str(exc)
    return render_fragment(request, "bulk/_preview.html", {"error": error, "preview": preview})


@page_view("bulk.add_bulkjob", "messaging.send_message")
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    """The wizard's first two steps on one form: who gets it, and what they get. Submitting runs the
    pre-flight (nothing is sent before it; above the threshold nothing is sent before confirmation)."""
    error = ""
    data = request.POST if request.method == "POST" else request.GET
    if request.method == "POST":
        channel = data.get("channel", "")
        recipients, error = _wizard_input(request, data)
        if not error:
            try:
                message = _message_from(data, request.FILES)
                job = bulk_job_create(
                    user=request.user,
                    channel=channel,
                    message=message,
                    scheduled_for=data.get("scheduled_for", "").strip() or None,
                    time_zone=data.get("time_zone", "").strip(),
                    **recipients,
                )
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
            "attributes": list(attribute_definitions()),
            "button_fields": range(BUTTON_FIELDS),
            "segments": Segment.objects.only("id", "name"),
            "tags": Tag.objects.all(),
            "threshold": settings.BULK_CONFIRMATION_THRESHOLD,
            "business_time_zone": business_time_zone(),
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
        "job_clicks": bulk_job_clicks(job),
        "percent": round(100 * job.processed_count / job.total_recipients) if job.total_recipients else 0,
        "to_process": max(job.total_recipients - job.skipped_count, 0),
        "can_confirm": request.user.has_perm("bulk.change_bulkjob") and job.status == JobStatus.AWAITING_CONFIRMATION,
        "can_pause": may_change and job.status in (JobStatus.PENDING, JobStatus.IN_PROGRESS),
        "can_resume": may_change and job.status == JobStatus.PAUSED,
        "can_cancel": may_change
        and job.status
        in (
            JobStatus.AWAITING_CONFIRMATION,
            JobStatus.SCHEDULED,
            JobStatus.PENDING,
            JobStatus.IN_PROGRESS,
            JobStatus.PAUSED,
        ),
        "can_reschedule": may_change
        and request.user.has_perm("messaging.send_message")
        and job.status == JobStatus.SCHEDULED,
        "scheduled_local": local_time(job),
        "business_time_zone": business_time_zone(),
        "quiet": quiet_waiting(job),
        "cost": job_running_cost(job),
        "live": not job.is_finished and job.status not in (JobStatus.AWAITING_CONFIRMATION, JobStatus.SCHEDULED),
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
    later = request.POST.get("scheduled_for", "").strip()
    done = "Confirmed and scheduled." if later else "Confirmed: the job is queued."
    return _act(
        request,
        job_id,
        bulk_job_confirm,
        done,
        count=count,
        scheduled_for=later or None,
        time_zone=request.POST.get("time_zone", ""),
    )


@page_view("bulk.change_bulkjob", "messaging.send_message")
@require_POST
def job_schedule(request: HttpRequest, job_id) -> HttpResponse:
    return _act(
        request,
        job_id,
        bulk_job_reschedule,
        "Rescheduled.",
        when=request.POST.get("scheduled_for", ""),
        time_zone=request.POST.get("time_zone", ""),
    )


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


@page_view("bulk.view_bulkjob", "bulk.view_bulkrecipient")
@require_GET
def job_funnel_page(request: HttpRequest, job_id) -> HttpResponse:
    """The delivery funnel: counts and rates, a chart over time, failures by reason, the recipients."""
    job = get_object_or_404(BulkJob, pk=job_id)
    state, reason = request.GET.get("state", ""), request.GET.get("reason", "")[:64]
    try:
        rows = funnel.recipients_filtered(job, state=state, reason=reason)
    except ValueError as exc:
        messages.error(request, str(exc))
        state, rows = "", funnel.recipients_filtered(job, reason=reason)
    page = Paginator(funnel.with_replied_at(rows, job), PAGE_SIZE).get_page(request.GET.get("page"))
    figures = funnel.job_funnel(job)
    return render_page(
        request,
        "bulk/funnel.html",
        {
            "job": job,
            "funnel": figures,
            "chart": funnel.funnel_chart(job),
            "cost": job_running_cost(job),
            "page": page,
            "state": state,
            "reason": reason,
            "states": [(key, funnel.STATE_LABELS[key], figures.by_state.get(key, 0)) for key in funnel.STATES],
            "reasons": funnel.reasons_of(job),
            "reason_words": REASON_WORDS,
        },
    )


@page_view("bulk.view_bulkjob", "bulk.view_bulkrecipient")
@require_GET
def job_funnel_csv(request: HttpRequest, job_id) -> HttpResponse:
    """The recipient table (as filtered) as a formula-safe CSV."""
    job = get_object_or_404(BulkJob, pk=job_id)
    state, reason = request.GET.get("state", ""), request.GET.get("reason", "")[:64]
    if state and state not in funnel.STATES:
        return HttpResponse(f"state must be one of {', '.join(funnel.STATES)}", status=400, content_type="text/plain")
    audit_record(user=request.user, action="bulk_job.funnel_export", resource_type="bulk_job", resource_id=job.pk,
                 details={"state": state, "reason": reason})  # fmt: skip
    response = StreamingHttpResponse(
        funnel.funnel_csv_lines(job, state=state, reason=reason), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="bulk-{job.pk}-funnel.csv"'
    return response
