"""The bulk layer's only door to the outbound path (messaging.safety, messaging.services, messaging.tier).

Bulk never re-implements the gate, the rate limits or a provider call: pre-flight asks the gate's
non-mutating `safety_evaluate`, and each recipient is stored and delivered by messaging.services
exactly like a single send (gate again right before the provider call, token buckets, tier
reservation, DRY_RUN, retries of transient errors). This module only translates between the two.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bulk.models import OUTCOME_UNKNOWN, PROVIDER_ERROR, BulkJob, BulkRecipient, RecipientStatus
from contacts.models import Channel, Contact
from messaging import ratelimit
from messaging.channels import ChannelError, Delivery, ProviderResult, dry_run_now, provider_for
from messaging.channels import email as email_channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.models import MediaFile, Message, MessageStatus, MessageType, MessageUsage, ProviderAttempt
from messaging.outbound.deliver import _dead_letter as services_dead_letter
from messaging.outbound.deliver import record_sent as outbound_record_sent
from messaging.outbound.request import OutgoingMedia
from messaging.safety import (
    Clearance,
    Refusal,
    RefusalCode,
    SafetyRefusal,
    SendRequest,
    safety_evaluate,
    safety_evaluate_many,
    safety_refusal_record,
    within_window,
)
from messaging.services import (
    DeliveryDeferred,
    message_fail_unexpected,
    message_send,
    provider_was_called,
    retry_countdown,
    send_request_build,
    whatsapp_phone_number_for,
)
from messaging.services import message_deliver as services_deliver
from messaging.tier import tier_conversation_open, tier_status
from wecare import metrics

logger = logging.getLogger(__name__)

GATE_CODES = frozenset(code.value for code in RefusalCode)
__all__ = ["retry_countdown"]  # re-exported for bulk.batch


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    reason: str = ""
    opens_conversation: bool = False


@dataclass(frozen=True)
class Outcome:
    status: str  # a final RecipientStatus
    code: str = ""
    details: str = ""


def job_media(job: BulkJob) -> OutgoingMedia | None:
    """The job's media file (stored once in the media bucket at creation), or None."""
    if not job.media_content_type:
        return None
    return OutgoingMedia(
        content_type=job.media_content_type, size=job.media_size, filename=job.media_filename, s3_key=job.media_s3_key
    )


def send_request(job: BulkJob, *, contact_id, phone_number_id: str) -> SendRequest:
    """A recipient's request: the job's message, personalised by the gate for the contact."""
    return SendRequest(
        contact_id=contact_id,
        channel=job.channel,
        message_type=job.message_type,
        text=job.content,
        template_name=job.template_name,
        template_language=job.template_language,
        template_parameters=job.template_parameters,
        template_header=job.template_header,
        template_buttons=job.template_buttons or None,
        subject=job.subject,
        html=job.html,
        media=job_media(job),
        origination_phone_number_id=phone_number_id if job.channel == Channel.WHATSAPP else "",
        personalise=True,
    )


class PreflightContext:
    """What every recipient of one pre-flight shares: the time and a tier snapshot per allowed number."""

    def __init__(self, job: BulkJob):
        self.now = timezone.now()
        self.tier = (
            {number: tier_status(number, now=self.now) for number in settings.WHATSAPP_PHONE_NUMBER_IDS}
            if job.channel == Channel.WHATSAPP
            else {}
        )


def phone_number_for(job: BulkJob, contact: Contact | None) -> str:
    """The WhatsApp number a recipient is sent from: the job's, else the one a single send would use."""
    if job.channel != Channel.WHATSAPP:
        return ""
    if job.origination_phone_number_id:
        return job.origination_phone_number_id
    return whatsapp_phone_number_for(contact) if contact is not None else ""


def gate_preflight(*, job: BulkJob, contact: Contact, phone_number_id: str, context: PreflightContext) -> Decision:
    """The gate's decision for one recipient (no side effect), and whether it opens a conversation."""
    refusal = safety_evaluate(
        send_request(job, contact_id=contact.pk, phone_number_id=phone_number_id),
        now=context.now,
        contact=contact,
        tier=context.tier,
    )
    business_initiated = (
        job.channel == Channel.WHATSAPP
        and job.message_type == MessageType.TEMPLATE
        and not within_window(contact, context.now)
    )
    if refusal is not None:
        return Decision(False, str(refusal.code), refusal.reason, business_initiated)
    return Decision(True, opens_conversation=business_initiated)


def conversation_already_open(phone_number_id: str, contact_id) -> bool:
    """A business-initiated conversation with the contact is open on this number (costs no tier)."""
    return tier_conversation_open(phone_number_id, contact_id)


def tier_limit() -> int:
    return settings.WHATSAPP_TIER_LIMIT


def tier_remaining(phone_number_id: str) -> int:
    return tier_status(phone_number_id).remaining


# --- sending one recipient ------------------------------------------------------------------------


class Refused(Exception):  # noqa: N818 - the gate's answer when the message is requested
    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.outcome = Outcome(RecipientStatus.SKIPPED, code, reason)


def message_create(*, job: BulkJob, recipient: BulkRecipient) -> Message:
    """Store the recipient's message exactly as a single send does (gate included), without enqueueing it:
    the bulk worker delivers it itself. Raises Refused if the gate says no now (consent withdrawn since
    the pre-flight, tier used up, ...)."""
    try:
        request = send_request_build(
            contact_id=recipient.contact_id,
            channel=job.channel,
            text=job.content,
            template_name=job.template_name,
            template_language=job.template_language,
            template_parameters=job.template_parameters or None,
            template_header=job.template_header,
            template_buttons=job.template_buttons or None,
            subject=job.subject,
            html=job.html,
            media=job_media(job),
            origination_phone_number_id=recipient.origination_phone_number_id,
            personalise=True,
        )
        return message_send(
            request,
            requested_by=job.created_by,
            enqueue=False,
            audit=False,  # the job is audited, not each of its messages
            bulk_job_id=job.pk,
        )
    except SafetyRefusal as refusal:
        raise Refused(refusal.code, refusal.reason) from refusal


def message_deliver(message: Message) -> Outcome:
    """Deliver through messaging.services.message_deliver until the outcome is final.

    A deferral (rate limit, transient provider error with its backoff) is waited out here: the send
    is in flight, so neither pause nor cancel interrupts it, and the provider is never called twice
    for one message except by the outbound path's own retry policy for transient errors.
    """
    while True:
        try:
            row = services_deliver(message.pk)
        except DeliveryDeferred as deferred:
            time.sleep(deferred.countdown)
            continue
        outcome = outcome_from_message(row)
        if outcome is None:
            # Still queued: another worker holds the message (it should not: the recipient claim is
            # exclusive). Its outcome is not ours to guess.
            return Outcome(RecipientStatus.FAILED, OUTCOME_UNKNOWN, "the message is held by another worker")
        return outcome


def outcome_from_message(message: Message) -> Outcome | None:
    """The recipient's outcome as the message records it; None while the message is still queued."""
    if message.status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ):
        return Outcome(RecipientStatus.SENT)
    if message.status == MessageStatus.FAILED:
        code = message.error_code or PROVIDER_ERROR
        details = message.error_details
        text = (
            details.get("message") or details.get("reason") or str(details)
            if isinstance(details, dict)
            else str(details)
        )
        status = RecipientStatus.SKIPPED if code in GATE_CODES else RecipientStatus.FAILED
        return Outcome(status, code, text or code)
    return None


def outcome_after_error(message: Message, exc: Exception) -> Outcome:
    """message_deliver raised something unexpected (not a provider error): fail this recipient only.

    The message is failed visibly by the outbound path (message_fail_unexpected). If a provider attempt
    is on record (the provider was, or may have been, called), the recipient's outcome is unknown.
    """
    error = f"{type(exc).__name__}: {exc}"
    row = message_fail_unexpected(message.pk, error=error) or message
    row.refresh_from_db()
    if row.status != MessageStatus.FAILED:
        return outcome_from_message(row) or Outcome(RecipientStatus.FAILED, OUTCOME_UNKNOWN, error)
    if row.error_code == "INTERNAL_ERROR" and provider_was_called(row.pk):
        return Outcome(RecipientStatus.FAILED, OUTCOME_UNKNOWN, f"delivery crashed after a provider call: {error}")
    return outcome_from_message(row)


def reconcile(message: Message, *, may_deliver: bool = True) -> Outcome | None:
    """The outcome of a recipient whose worker died after claiming it, from its message.

    - The message records an outcome (sent, failed): that is the recipient's.
    - It is queued and not held (the worker died before delivering it, or between a deferral and
      the retry the outbound path would make anyway): delivered now, exactly as that worker would
      have — unless ``may_deliver`` is False (the job was cancelled): then CANCELLED.
    - It is queued and still carries the dead worker's claim: the worker died inside the delivery,
      perhaps after the provider call. None: the outcome is unknown and nothing is resent.
    """
    message.refresh_from_db()
    outcome = outcome_from_message(message)
    if outcome is not None:
        return outcome
    if message.status == MessageStatus.QUEUED and message.locked_until is None:
        if not may_deliver:
            return Outcome(
                RecipientStatus.CANCELLED, "", "The job was cancelled; its worker stopped before sending this message."
            )
        return message_deliver(message)
    return None


# --- batched sending (bulk.batch) -----------------------------------------------------------------


def email_sender() -> str:
    return email_channel.sender()


def provider_delivery(message: Message, clearance: Clearance, request: SendRequest, now: datetime) -> Delivery:
    """What the channel's provider needs to build and rate-limit one recipient's send."""
    return Delivery(message=message, clearance=clearance, now=now, request=request)


def preview_samples(job: BulkJob, rows: list[BulkRecipient], *, limit: int = 3, examine: int = 0) -> list[dict]:
    """The message as the first ``limit`` recipients the gate clears would read it, rendered by the gate
    itself (pre-flight rows are sendable already; the wizard's preview passes candidates to judge)."""
    picked = [row for row in rows if row.sequence is not None and row.contact is not None][: examine or limit]
    requests = [
        send_request(job, contact_id=r.contact_id, phone_number_id=r.origination_phone_number_id) for r in picked
    ]
    contacts = {str(row.contact.pk): row.contact for row in picked}
    results = safety_evaluate_many(requests, contacts=contacts, tier_allows=lambda *_: True) if picked else []
    samples = []
    for row, result in zip(picked, results, strict=True):
        if len(samples) == limit:
            break
        if not isinstance(result, Clearance):
            continue  # the gate would not send it this (or, since the pre-flight, no longer)
        rendered = result.request
        samples.append(
            {
                "contactId": str(row.contact_id),
                "name": row.contact.name,
                "address": row.address,
                "subject": rendered.subject,
                "text": result.content,
                "html": result.html,
                "templateHeader": rendered.template_header,
                "templateButtons": rendered.template_buttons or {},
                "mediaFilename": job.media_filename,
            }
        )
    return samples


def job_media_file(job: BulkJob) -> MediaFile | None:
    """The job's file as a (not stored) MediaFile: what the provider reads to build a media payload."""
    if not job.media_s3_key:
        return None
    return MediaFile(
        s3_key=job.media_s3_key, content_type=job.media_content_type, size=job.media_size, filename=job.media_filename
    )


def job_media_id(job: BulkJob, phone_number_id: str) -> str:
    """The Meta media id of the job's file for this number: uploaded (PostWhatsAppMessageMedia) once per
    number for the whole job, then reused by every recipient. Raises ChannelError.

    The job row is locked while uploading, so two chunks starting together upload it once."""
    provider = provider_for(Channel.WHATSAPP)
    with transaction.atomic():
        row = BulkJob.objects.select_for_update().only("whatsapp_media_ids", "media_s3_key").get(pk=job.pk)
        known = (row.whatsapp_media_ids or {}).get(phone_number_id) or {}
        uploaded_at = parse_datetime(known.get("uploadedAt", "") or "")
        if known.get("id") and uploaded_at and timezone.now() - uploaded_at < whatsapp_channel.MEDIA_ID_REUSE:
            return known["id"]
        ratelimit.rate_limit_acquire(ratelimit.whatsapp_media_buckets(), max_wait=30.0)
        request = whatsapp_channel.media_upload_request(
            phone_number_id=phone_number_id, bucket=settings.MEDIA_BUCKET, key=row.media_s3_key
        )
        result = provider.call(request)
        if result.dry_run:
            return whatsapp_channel.DRY_RUN_MEDIA_ID  # nothing uploaded: nothing to remember
        media_id = result.response.get("mediaId")
        if not media_id:
            raise ChannelError(
                "PostWhatsAppMessageMedia returned no mediaId", permanent=False, service=provider.service
            )
        ids = dict(row.whatsapp_media_ids or {})
        ids[phone_number_id] = {"id": media_id, "uploadedAt": timezone.now().isoformat()}
        BulkJob.objects.filter(pk=job.pk).update(whatsapp_media_ids=ids)
        logger.info("bulk job %s: media uploaded once for number %s", job.pk, phone_number_id)
        return media_id


def rate_limit_buckets(delivery: Delivery) -> list[ratelimit.Bucket]:
    return provider_for(delivery.message.channel).buckets(delivery)


def provider_call(delivery: Delivery, *, describe: dict) -> tuple[ProviderResult, str]:
    """One send through the channel's provider (the boundary decides DRY_RUN): (result, provider message id).
    A media file was uploaded once for the job (``delivery.media_id``), so there is nothing to prepare.
    ``describe`` gets the service and operation called (for its attempt row). Raises ChannelError."""
    provider = provider_for(delivery.message.channel)
    request = provider.send_request(delivery)
    describe.update(service=request.service, operation=request.operation)
    started = time.perf_counter()
    try:
        result = provider.call(request)
    finally:
        if not dry_run_now():
            metrics.emit("ProviderLatency", round((time.perf_counter() - started) * 1000, 3), channel=provider.channel)
    return result, provider.sent(result)


def record_sent(channel: str, message_ids: list, *, dry_run: bool) -> None:
    """The channel's own record of a batch's sends (voice: the calls), as for a single send."""
    outbound_record_sent(provider_for(channel), message_ids, dry_run=dry_run)


def attempts_record(rows: list[ProviderAttempt]) -> None:
    """The provider attempts of a batch, written at once (each measured when it was made)."""
    ProviderAttempt.objects.bulk_create(rows)


def attempt_row(message_id, *, started_at, duration_ms: int, result: ProviderResult | None = None,
                provider_message_id: str = "", error: ChannelError | Exception | None = None,
                service: str, operation: str) -> ProviderAttempt:  # fmt: skip
    """One ProviderAttempt row, as messaging.outbound.attempts writes it for a single send."""
    row = ProviderAttempt(
        message_id=message_id, service=service, operation=operation, started_at=started_at,
        finished_at=timezone.now(), duration_ms=duration_ms,
    )  # fmt: skip
    if isinstance(error, ChannelError):
        row.outcome = (
            ProviderAttempt.Outcome.PERMANENT_ERROR if error.permanent else ProviderAttempt.Outcome.TRANSIENT_ERROR
        )
        row.provider_request_id = error.request_id[:128]
        row.error_code = (error.provider_code or error.code)[:64]
        row.error_text = error.message[:2000]
    elif error is not None:  # not a provider answer: the outcome stays "started" (unknown)
        row.finished_at = None
        row.error_text = f"{type(error).__name__}: {error}"[:2000]
    elif result is not None:
        row.outcome = ProviderAttempt.Outcome.DRY_RUN if result.dry_run else ProviderAttempt.Outcome.SUCCEEDED
        row.provider_request_id = result.request_id[:128]
        row.provider_message_id = provider_message_id[:256]
    return row


def message_failed(message_id, *, code: str, details: dict, attempts: int, now: datetime, dead_letter: bool = False):
    """A bulk message ends failed (refused, provider error, crash); provider failures are dead-lettered."""
    Message.objects.filter(pk=message_id, status=MessageStatus.QUEUED).update(
        status=MessageStatus.FAILED,
        failed_at=now,
        error_code=code[:64],
        error_details=details,
        attempts=F("attempts") + attempts,
        locked_until=None,
        updated_at=now,
    )
    if dead_letter:
        row = Message.objects.filter(pk=message_id).first()
        if row is not None:
            services_dead_letter(row, details.get("message") or code)


def refusal_record(refusal: Refusal, request: SendRequest, *, now: datetime) -> None:
    safety_refusal_record(refusal, request, now=now)


def usage_count(clearances: list[Clearance], *, channel: str, dry_run: bool, now: datetime) -> None:
    """Add these sends to MessageUsage: one update per (day, channel, kind, template, number) key."""
    groups: Counter = Counter()
    business: Counter = Counter()
    segments: Counter = Counter()
    for clearance in clearances:
        template = clearance.template
        key = (
            MessageUsage.Kind.TEMPLATE if template else MessageUsage.Kind.FREE_FORM,
            template.name if template else "",
            template.language if template else "",
            template.category if template else "",
            clearance.phone_number_id,
        )
        groups[key] += 1
        business[key] += int(clearance.business_initiated)
        segments[key] += clearance.segments or 0
    day = timezone.localdate(now)
    for key, count in groups.items():
        kind, name, language, category, phone = key
        fields = {
            "day": day, "channel": channel, "kind": kind, "template_name": name, "template_language": language,
            "category": category, "origination_phone_number_id": phone, "dry_run": dry_run,
        }  # fmt: skip
        changes = {
            "count": F("count") + count,
            "business_initiated": F("business_initiated") + business[key],
            "segments": F("segments") + segments[key],
        }
        if MessageUsage.objects.filter(**fields).update(**changes):
            continue
        try:
            with transaction.atomic():
                MessageUsage.objects.create(
                    **fields, count=count, business_initiated=business[key], segments=segments[key]
                )
        except IntegrityError:
            MessageUsage.objects.filter(**fields).update(**changes)
