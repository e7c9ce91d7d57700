"""Bulk jobs: create (with pre-flight), confirm, pause, resume, cancel, retry failed, DLQ replay.

The API, the admin, the management command and the Celery tasks all call these; none re-implements
them. Sending itself lives in bulk.execution (chunks) on top of the outbound path (bulk.sending).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from bulk import execution
from bulk.errors import BulkConfirmationError, BulkInputError, BulkStateError, BulkTierError
from bulk.models import (
    CHUNK_DEAD_LETTERED,
    CHUNK_SIZE,
    OUTCOME_UNKNOWN,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    ChunkStatus,
    JobStatus,
    RecipientSource,
    RecipientStatus,
)
from bulk.preflight import preflight_run, tier_message, tier_summary
from bulk.recipients import (
    Resolution,
    resolve_contact_ids,
    resolve_csv,
    resolve_filter,
    resolve_segment,
    resolve_tag,
)
from bulk.tasks import bulk_job_enqueue_chunks
from contacts.models import Channel

logger = logging.getLogger(__name__)

INSERT_BATCH = 1000


@dataclass
class BulkMessage:
    """The message a job sends, as for a single send (see messaging's send API)."""

    message_type: str = "text"
    content: str = ""
    template_name: str = ""
    template_language: str = ""
    template_parameters: list | dict | None = None
    subject: str = ""
    html: str = ""
    origination_phone_number_id: str = ""


def _validate_message(channel: str, message: BulkMessage) -> None:
    if channel not in Channel.values:
        raise BulkInputError(f"channel must be one of {', '.join(Channel.values)}.", code="INVALID_CHANNEL")
    if channel == Channel.WHATSAPP:
        if message.template_name:
            message.message_type = "template"
        elif message.content:
            message.message_type = "text"
        else:
            raise BulkInputError("A WhatsApp bulk message needs text or a template.", code="CONTENT_INVALID")
        if message.origination_phone_number_id and (
            message.origination_phone_number_id not in settings.WHATSAPP_PHONE_NUMBER_IDS
        ):
            raise BulkInputError(
                f"{message.origination_phone_number_id} is not an allowed WhatsApp phone number id.",
                code="PHONE_NOT_ALLOWED",
            )
    elif channel == Channel.SMS:
        if not message.content:
            raise BulkInputError("An SMS bulk message needs text.", code="CONTENT_INVALID")
        message.message_type = "text"
    else:
        if not message.subject or not (message.content or message.html):
            raise BulkInputError(
                "An email bulk message needs a subject and a text or HTML body.", code="CONTENT_INVALID"
            )
        message.message_type = "email"


def _resolve(
    channel: str, *, contact_ids, contact_filter, csv_data, csv_name, segment_id=None, tag=None
) -> tuple[str, Resolution]:
    given = [value for value in (contact_ids, contact_filter, csv_data, segment_id, tag) if value is not None]
    if len(given) != 1:
        raise BulkInputError(
            "Give the recipients exactly one way: contactIds, a filter, a segment, a tag or a CSV file.",
            code="INVALID_RECIPIENTS",
        )
    if segment_id is not None:
        return RecipientSource.SEGMENT, resolve_segment(segment_id, channel=channel)
    if tag is not None:
        return RecipientSource.TAG, resolve_tag(tag, channel=channel)
    if contact_ids is not None:
        return RecipientSource.CONTACT_IDS, resolve_contact_ids(contact_ids, channel=channel)
    if contact_filter is not None:
        return RecipientSource.FILTER, resolve_filter(contact_filter, channel=channel)
    return RecipientSource.CSV, resolve_csv(csv_data, channel=channel, filename=csv_name)


def bulk_job_create(
    *,
    user,
    channel: str,
    message: BulkMessage,
    contact_ids: list | None = None,
    contact_filter: dict | None = None,
    csv_data: bytes | None = None,
    csv_name: str = "",
    segment_id=None,
    tag: str | None = None,
    retry_of: BulkJob | None = None,
) -> BulkJob:
    """Resolve the recipients, run the pre-flight and store the job with every recipient.

    - The request is wrong (recipients, message, template): BulkInputError, nothing stored.
    - Nobody would receive it, or (WhatsApp) it would exceed the tier: stored REJECTED with the
      pre-flight (so the per-recipient reasons can be read), then BulkInputError / BulkTierError.
    - Up to BULK_CONFIRMATION_THRESHOLD recipients: confirmed and queued at once.
    - More: AWAITING_CONFIRMATION until bulk_job_confirm gets the exact will-send count.
    """
    _validate_message(channel, message)
    if retry_of is not None:
        source, resolution = RecipientSource.RETRY, resolve_contact_ids(contact_ids, channel=channel)
        resolution.source_details = {"retryOf": str(retry_of.pk), "failedRecipients": len(contact_ids)}
    else:
        source, resolution = _resolve(
            channel,
            contact_ids=contact_ids,
            contact_filter=contact_filter,
            csv_data=csv_data,
            csv_name=csv_name,
            segment_id=segment_id,
            tag=tag,
        )

    job = BulkJob(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        channel=channel,
        message_type=message.message_type,
        content=message.content,
        template_name=message.template_name,
        template_language=message.template_language,
        template_parameters=message.template_parameters if message.template_parameters is not None else [],
        subject=message.subject,
        html=message.html,
        origination_phone_number_id=message.origination_phone_number_id if channel == Channel.WHATSAPP else "",
        recipient_source=source,
        source_details=resolution.source_details,
        retry_of=retry_of,
    )
    preflight = preflight_run(job=job, candidates=resolution.candidates, duplicates=resolution.duplicates)
    job.preflight = preflight.summary
    rejection: Exception | None = None
    if preflight.will_send == 0:
        job.status = JobStatus.REJECTED
        job.status_reason = "None of the recipients would receive this message; see byReason."
        rejection = BulkInputError(job.status_reason, code="NO_SENDABLE_RECIPIENTS")
    elif preflight.tier_exceeded:
        job.status = JobStatus.REJECTED
        job.status_reason = tier_message(preflight.summary["tier"])
        rejection = BulkTierError(job.status_reason)

    with transaction.atomic():
        job.save()
        for row in preflight.recipients:
            row.job = job
        BulkRecipient.objects.bulk_create(preflight.recipients, batch_size=INSERT_BATCH)
        execution.job_refresh_counters(job.pk)
        audit_record(
            user=user,
            action="bulk_job.create",
            resource_type="bulk_job",
            resource_id=job.pk,
            details={
                "channel": channel,
                "source": source,
                **{k: preflight.summary[k] for k in ("totalRecipients", "willSend")},
            },
        )
        if rejection is None and not preflight.summary["confirmationRequired"]:
            _start(job, user=user)
    job.refresh_from_db()
    if rejection is not None:
        logger.warning("bulk job %s rejected: %s", job.pk, job.status_reason)
        rejection.details = {"jobId": str(job.pk)}
        rejection.job = job
        raise rejection
    return job


def _start(job: BulkJob, *, user) -> None:
    """Confirmed: create the chunks (100 sendable recipients each) and queue them after commit."""
    will_send = BulkRecipient.objects.filter(job=job, sequence__isnull=False).count()
    chunks = [
        BulkJobChunk(
            job=job,
            sequence=index,
            start_sequence=start,
            end_sequence=min(start + CHUNK_SIZE, will_send),
        )
        for index, start in enumerate(range(0, will_send, CHUNK_SIZE))
    ]
    BulkJobChunk.objects.bulk_create(chunks, batch_size=INSERT_BATCH)
    now = timezone.now()
    BulkJob.objects.filter(pk=job.pk).update(
        status=JobStatus.PENDING,
        confirmed_at=now,
        confirmed_by=user if getattr(user, "is_authenticated", False) else None,
        updated_at=now,
    )
    job_id = str(job.pk)
    # One message now; a worker queues the chunks (bulk.tasks.bulk_job_enqueue_chunks).
    transaction.on_commit(lambda: bulk_job_enqueue_chunks.delay(job_id))


def _tier_recheck(job: BulkJob) -> dict | None:
    """The tier as of now for a WhatsApp job's business-initiated conversations; None if not WhatsApp."""
    if job.channel != Channel.WHATSAPP:
        return None
    from collections import Counter

    opens = Counter(
        BulkRecipient.objects.filter(job=job, sequence__isnull=False, opens_conversation=True).values_list(
            "origination_phone_number_id", flat=True
        )
    )
    return tier_summary(sorted(opens), opens)


def bulk_job_confirm(*, job_id, user, count) -> BulkJob:
    """Confirm a job with the exact number of recipients its pre-flight says will be sent to."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.AWAITING_CONFIRMATION:
            raise BulkStateError(f"Only a job awaiting confirmation can be confirmed; this one is {job.status}.")
        will_send = job.preflight.get("willSend")
        if isinstance(count, bool) or not isinstance(count, int) or count != will_send:
            raise BulkConfirmationError(
                f"Confirm with the number of recipients the pre-flight says will be sent to: {will_send} "
                f"(got {count!r}). Nothing was queued.",
                details={"willSend": will_send},
            )
        tier = _tier_recheck(job)
        if tier is not None and tier["exceeded"]:
            job.preflight = {**job.preflight, "tier": tier}
            job.status = JobStatus.REJECTED
            job.status_reason = tier_message(tier)
            job.save(update_fields=["preflight", "status", "status_reason", "updated_at"])
            audit_record(user=user, action="bulk_job.reject", resource_type="bulk_job", resource_id=job.pk,
                         details={"reason": "TIER_LIMIT"})  # fmt: skip
            rejection = BulkTierError(job.status_reason, details={"jobId": str(job.pk)})
        else:
            rejection = None
            _start(job, user=user)
            audit_record(user=user, action="bulk_job.confirm", resource_type="bulk_job", resource_id=job.pk,
                         details={"count": count})  # fmt: skip
    if rejection is not None:
        raise rejection
    job.refresh_from_db()
    return job


def bulk_job_pause(*, job_id, user) -> BulkJob:
    """No new send starts; the chunk in flight stops at its next recipient."""
    now = timezone.now()
    changed = BulkJob.objects.filter(pk=job_id, status__in=[JobStatus.PENDING, JobStatus.IN_PROGRESS]).update(
        status=JobStatus.PAUSED, paused_at=now, updated_at=now
    )
    job = BulkJob.objects.get(pk=job_id)
    if not changed:
        raise BulkStateError(f"Only a pending or running job can be paused; this one is {job.status}.")
    audit_record(user=user, action="bulk_job.pause", resource_type="bulk_job", resource_id=job_id)
    return job


def bulk_job_resume(*, job_id, user) -> BulkJob:
    """Continue where the job stopped: every chunk not done is queued again (duplicates are harmless)."""
    now = timezone.now()
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.PAUSED:
            raise BulkStateError(f"Only a paused job can be resumed; this one is {job.status}.")
        job.status = JobStatus.IN_PROGRESS if job.started_at else JobStatus.PENDING
        job.resumed_at = now
        job.save(update_fields=["status", "resumed_at", "updated_at"])
        audit_record(user=user, action="bulk_job.resume", resource_type="bulk_job", resource_id=job_id)
        transaction.on_commit(
            lambda: bulk_job_enqueue_chunks.delay(
                str(job_id), [str(ChunkStatus.PENDING), str(ChunkStatus.QUEUED), str(ChunkStatus.RUNNING)]
            )
        )
    execution.job_maybe_finish(job_id)  # paused after its last send: nothing left to queue
    job.refresh_from_db()
    return job


def bulk_job_cancel(*, job_id, user) -> BulkJob:
    """Remaining recipients become CANCELLED; sends in flight finish; a partial report is written."""
    now = timezone.now()
    cancellable = [JobStatus.AWAITING_CONFIRMATION, JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.PAUSED]
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_id)
        if job.status not in cancellable:
            raise BulkStateError(f"This job is {job.status} and can no longer be cancelled.")
        job.status = JobStatus.CANCELLED
        job.cancelled_at = now
        job.save(update_fields=["status", "cancelled_at", "updated_at"])
        who = getattr(user, "email", "") or "system"
        cancelled = BulkRecipient.objects.filter(job_id=job_id, status=RecipientStatus.PENDING).update(
            status=RecipientStatus.CANCELLED, error_details=f"Job cancelled by {who}.", updated_at=now
        )
        audit_record(user=user, action="bulk_job.cancel", resource_type="bulk_job", resource_id=job_id,
                     details={"cancelledRecipients": cancelled})  # fmt: skip
    execution.job_refresh_counters(job_id)
    execution.job_maybe_finish(job_id)
    job.refresh_from_db()
    return job


def bulk_job_retry_failed(*, job_id, user, include_unknown: bool = False) -> BulkJob:
    """A new job (same message, same pre-flight and confirmation) for the FAILED recipients of a finished one.

    Recipients whose outcome is unknown may have received the message, so they are left out unless
    ``include_unknown``. Recipients of a dead-lettered chunk are left out: replay the chunk from bulk-dlq.
    """
    source = BulkJob.objects.get(pk=job_id)
    if source.status not in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        raise BulkStateError(f"Retry failed needs a finished job; this one is {source.status}.")
    failed = BulkRecipient.objects.filter(job=source, status=RecipientStatus.FAILED, contact__isnull=False).exclude(
        error_code=CHUNK_DEAD_LETTERED
    )
    if not include_unknown:
        failed = failed.exclude(error_code=OUTCOME_UNKNOWN)
    contact_ids = [str(pk) for pk in failed.order_by("sequence").values_list("contact_id", flat=True)]
    if not contact_ids:
        raise BulkInputError("This job has no failed recipients to retry.", code="NO_RECIPIENTS")
    message = BulkMessage(
        content=source.content,
        template_name=source.template_name,
        template_language=source.template_language,
        template_parameters=source.template_parameters,
        subject=source.subject,
        html=source.html,
        origination_phone_number_id=source.origination_phone_number_id,
    )
    return bulk_job_create(user=user, channel=source.channel, message=message, contact_ids=contact_ids, retry_of=source)


def handle_bulk_dlq_payload(payload: dict) -> None:
    """DLQ replay of a chunk that failed after its retries (messaging.dlq calls this by dotted path).

    Its recipients that were never attempted (CHUNK_DEAD_LETTERED) go back to PENDING, the job runs
    again, and the chunk is processed here; an exception makes the DLQ keep the payload for later.
    """
    chunk_id = payload["chunkId"]
    chunk = BulkJobChunk.objects.select_related("job").get(pk=chunk_id)
    if chunk.job.status == JobStatus.CANCELLED:
        logger.info("bulk DLQ: job %s was cancelled; chunk %s not replayed", chunk.job_id, chunk_id)
        return
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=chunk.job_id)
        now = timezone.now()
        BulkRecipient.objects.filter(
            job=job,
            sequence__gte=chunk.start_sequence,
            sequence__lt=chunk.end_sequence,
            status=RecipientStatus.FAILED,
            error_code=CHUNK_DEAD_LETTERED,
        ).update(status=RecipientStatus.PENDING, error_code="", error_details="", updated_at=now)
        BulkJobChunk.objects.filter(pk=chunk_id, status=ChunkStatus.DEAD_LETTERED).update(
            status=ChunkStatus.QUEUED, last_error=""
        )
        if job.status in (JobStatus.FAILED, JobStatus.COMPLETED):
            job.status = JobStatus.IN_PROGRESS
            job.status_reason = ""
            job.completed_at = None
            job.report_s3_key = ""
            job.report_csv_s3_key = ""
            job.save(
                update_fields=[
                    "status",
                    "status_reason",
                    "completed_at",
                    "report_s3_key",
                    "report_csv_s3_key",
                    "updated_at",
                ]
            )
    if job.status == JobStatus.PAUSED:
        return  # resume queues it with the rest
    result = execution.chunk_process(chunk_id)
    if result.outcome not in ("done", "already-done", "not-runnable"):
        raise RuntimeError(f"chunk {chunk_id} replay ended {result.outcome}")
    execution.job_maybe_finish(job.pk)


__all__ = [
    "BulkMessage",
    "bulk_job_cancel",
    "bulk_job_confirm",
    "bulk_job_create",
    "bulk_job_pause",
    "bulk_job_resume",
    "bulk_job_retry_failed",
    "handle_bulk_dlq_payload",
]
