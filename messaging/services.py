"""Outbound messages: request, store, deliver. Every send in the platform goes through here.

Public interface (the API, the admin, the pages, bulk jobs and AI replies use only these):

- ``message_send(*, contact_id, channel, text="", media=None, media_type="", template_name="",
  template_language="", template_parameters=None, subject="", html="", origination_phone_number_id="",
  requested_by=None, enqueue=True, audit=True, now=None) -> Message``
  Validates through the safety gate (raises ``messaging.safety.SafetyRefusal(code, reason)``), uploads
  media to S3, stores the Message (status queued) and, when the transaction commits, enqueues the
  Celery task ``messaging.tasks.outbound.deliver_message`` on the outbound queue. ``enqueue=False``
  leaves delivery to the caller (bulk workers call ``message_deliver`` themselves). ``audit=False``
  skips the per-message audit entry (bulk jobs audit the job instead).
- ``message_deliver(message_id, *, now=None) -> Message``
  Called by the task, or directly (bulk worker threads). Claims the message (a second copy of the
  same task does nothing), re-runs the gate (consent may have changed; the tier is reserved here),
  takes rate-limit tokens, calls the channel (or, in DRY_RUN, logs the exact request and calls
  nothing), and records provider id, status, attempts and errors. It returns the message when the
  outcome is final: status "sent" (``dry_run=True`` for a dry run), or "failed" with ``error_code`` =
  the gate's code (refused at delivery) or the provider's (permanent error, or transient errors past
  OUTBOUND_MAX_RETRIES; then its payload also goes to outbound-dlq). It raises
  ``DeliveryDeferred(countdown, reason)`` when the message must be tried again later (rate limit,
  transient provider error): the message stays queued; the caller re-schedules it after
  ``countdown`` seconds. A message is never dropped or failed for a rate limit.
- ``handle_outbound_dlq_payload(payload)``: the outbound-dlq replay handler (messaging.dlq). A
  replay is a new message (``replay_of`` = the failed one) sent through message_send, so the gate
  decides again; a message is replayed at most MAX_REPLAYS times.
- ``send_request_build(...) -> SendRequest`` and ``whatsapp_phone_number_for(contact)``: what
  message_send gives the gate; bulk pre-flight evaluates the same request with
  ``messaging.safety.safety_evaluate``.
- ``media_upload(*, data, content_type, filename="") -> OutgoingMedia``: put a file in the media
  bucket once and send it in many messages (``message_send(media=...)``); Meta's media id is reused
  per phone number for 29 days.
- ``whatsapp_react(*, message, emoji) -> Message`` and ``whatsapp_mark_as_read(*, message)``: the
  courtesies messaging.inbound offers on an inbound message, through the same gate (window, opt-in,
  allowlisted number), from the number the message came to.
- ``message_fail_unexpected(message_id, *, error)``: a delivery crashed outside the provider call
  (used by the task's on_failure and by bulk workers): the message fails visibly and is dead-lettered.

WhatsApp phone number: an explicit ``origination_phone_number_id`` (must be in the allowlist), else
the number the contact last wrote to (the service window belongs to that number), else the first of
settings.WHATSAPP_PHONE_NUMBER_IDS. Deterministic, so a conversation stays on one number.

Retries: transient provider errors (throttling, 5xx, timeouts) are retried after an exponential
backoff with jitter (OUTBOUND_RETRY_BASE_SECONDS × 2^(n-1), capped at OUTBOUND_RETRY_MAX_SECONDS,
randomised between half and all of it), at most OUTBOUND_MAX_RETRIES (3) times; botocore makes a
single attempt per call (messaging.channels.provider_client), so a message costs at most four
provider calls. Permanent errors are not retried.

Send modes: SEND_MODE=DRY_RUN runs everything (gate, tier, rate limits, media upload to our own S3
bucket) except provider calls, logs each request it would have made in full, and marks the message
``dry_run=True`` with status "sent" and no provider id: the API shows ``dryRun: true`` and the admin
a "dry run — not sent" badge. LIVE (production only, see settings) calls the providers.
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from pynamodb.exceptions import PynamoDBException

from accounts.services import audit_record
from contacts.models import Channel, Contact
from messaging import ratelimit
from messaging.channels import ChannelError, ProviderRequest
from messaging.channels import email as email_channel
from messaging.channels import sms as sms_channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.dlq import dlq_send
from messaging.models import (
    Direction,
    MediaFile,
    Message,
    MessageStatus,
    MessageType,
    MessageUsage,
    status_may_advance,
)
from messaging.safety import READ_RECEIPT, Clearance, SafetyRefusal, SendRequest, safety_check
from wecare import alerts, aws, logs, metrics

logger = logging.getLogger(__name__)

# A worker holds a message this long while sending it; longer than any single delivery attempt
# (rate-limit wait + media upload + send, each bounded by the AWS timeouts).
CLAIM_SECONDS = 120
MEDIA_ID_REUSE = timedelta(days=29)  # WhatsApp keeps uploaded media 30 days
MAX_REPLAYS = 3
# Our own infrastructure (DynamoDB for rate limits and tier, S3) failing before the provider call:
# retried with the same backoff this many times, then the message fails visibly (INTERNAL_ERROR).
INFRASTRUCTURE_MAX_RETRIES = 5
INFRASTRUCTURE_ERRORS = (PynamoDBException, BotoCoreError, ClientError)
DRY_RUN_MEDIA_ID = "dry-run-media-not-uploaded"


class DeliveryDeferred(Exception):  # noqa: N818 - a state, not a failure
    """Not now: deliver this message again after ``countdown`` seconds. It stays queued."""

    def __init__(self, countdown: float, reason: str):
        super().__init__(f"deferred {countdown:.2f}s: {reason}")
        self.countdown = max(0.0, countdown)
        self.reason = reason


@dataclass(frozen=True)
class OutgoingMedia:
    """A file to send: its bytes (message_send uploads them) or an object already in the media bucket."""

    content_type: str
    size: int
    filename: str = ""
    data: bytes | IO[bytes] | None = None
    s3_key: str = ""


# --- Building the request -----------------------------------------------------------------------


def whatsapp_phone_number_for(contact: Contact) -> str:
    """The allowlisted number to write to this contact from (see module docstring), or ""."""
    allowed = settings.WHATSAPP_PHONE_NUMBER_IDS
    last = (
        Message.objects.filter(contact=contact, channel=Channel.WHATSAPP, direction=Direction.INBOUND)
        .exclude(origination_phone_number_id="")
        .order_by("-created_at")
        .values_list("origination_phone_number_id", flat=True)
        .first()
    )
    if last and last in allowed:
        return last
    return allowed[0] if allowed else ""


def _message_type(
    channel: str, template_name: str, media: OutgoingMedia | None, media_type: str, reaction_to: str = ""
) -> str:
    if channel == Channel.EMAIL:
        return MessageType.EMAIL
    if template_name:
        return MessageType.TEMPLATE
    if reaction_to:
        return MessageType.REACTION
    if media is not None:
        # An unknown content type becomes "document", which the gate then refuses with a clear reason.
        return media_type or whatsapp_channel.media_type_for(media.content_type) or MessageType.DOCUMENT
    return MessageType.TEXT


def send_request_build(
    *,
    contact_id,
    channel: str,
    text: str = "",
    media: OutgoingMedia | None = None,
    media_type: str = "",
    template_name: str = "",
    template_language: str = "",
    template_parameters: list | dict | None = None,
    subject: str = "",
    html: str = "",
    origination_phone_number_id: str = "",
    reaction_to: str = "",
    contact: Contact | None = None,
) -> SendRequest:
    """The gate's view of a send request; picks the WhatsApp number when none is given."""
    if channel == Channel.WHATSAPP and not origination_phone_number_id:
        if contact is None:
            contact = Contact.objects.active().filter(pk=contact_id).first() if _is_uuid(contact_id) else None
        if contact is not None:
            origination_phone_number_id = whatsapp_phone_number_for(contact)
    return SendRequest(
        contact_id=contact_id,
        channel=channel,
        message_type=_message_type(channel, template_name, media, media_type, reaction_to),
        text=text or "",
        template_name=template_name or "",
        template_language=template_language or "",
        template_parameters=template_parameters,
        subject=subject or "",
        html=html or "",
        has_media=media is not None,
        media_content_type=media.content_type if media else "",
        media_size=media.size if media else None,
        origination_phone_number_id=origination_phone_number_id or "",
        target_whatsapp_message_id=reaction_to or "",
    )


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return False
    return True


# --- Media ----------------------------------------------------------------------------------------

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_filename(filename: str) -> str:
    name = SAFE_NAME.sub("_", (filename or "").rsplit("/", 1)[-1]).strip("._") or "file"
    return name[-100:]


def media_upload(
    *, data: bytes | IO[bytes], content_type: str, filename: str = "", size: int | None = None
) -> OutgoingMedia:
    """Store a file in the private media bucket under MEDIA_OUTGOING_PREFIX; send it with message_send."""
    if size is None:
        size = len(data) if isinstance(data, bytes | bytearray) else None
    if hasattr(data, "seek"):
        data.seek(0)
    key = f"{settings.MEDIA_OUTGOING_PREFIX}{timezone.now():%Y/%m/%d}/{uuid.uuid4()}/{_safe_filename(filename)}"
    aws.client("s3").put_object(
        Bucket=settings.MEDIA_BUCKET, Key=key, Body=data, ContentType=content_type or "application/octet-stream"
    )
    if size is None:
        size = aws.client("s3").head_object(Bucket=settings.MEDIA_BUCKET, Key=key)["ContentLength"]
    return OutgoingMedia(content_type=content_type, size=size, filename=filename, s3_key=key)


# --- message_send -------------------------------------------------------------------------------


def _enqueue(message_id) -> None:
    # Imported here: the task module imports this one.
    from messaging.tasks.outbound import deliver_message

    deliver_message.apply_async(args=[str(message_id)])


def message_send(
    *,
    contact_id,
    channel: str,
    text: str = "",
    media: OutgoingMedia | None = None,
    media_type: str = "",
    template_name: str = "",
    template_language: str = "",
    template_parameters: list | dict | None = None,
    subject: str = "",
    html: str = "",
    origination_phone_number_id: str = "",
    reaction_to: str = "",
    requested_by=None,
    enqueue: bool = True,
    audit: bool = True,
    now: datetime | None = None,
    replay_of: Message | None = None,
) -> Message:
    """Validate, store (queued) and hand to the outbound queue. Raises SafetyRefusal."""
    now = now or timezone.now()
    request = send_request_build(
        contact_id=contact_id,
        channel=channel,
        text=text,
        media=media,
        media_type=media_type,
        template_name=template_name,
        template_language=template_language,
        template_parameters=template_parameters,
        subject=subject,
        html=html,
        origination_phone_number_id=origination_phone_number_id,
        reaction_to=reaction_to,
    )
    clearance = safety_check(request, now=now)
    if media is not None and not media.s3_key:
        if media.data is None:
            raise ValueError("OutgoingMedia needs data or an s3_key")
        media = media_upload(data=media.data, content_type=media.content_type, filename=media.filename, size=media.size)

    with transaction.atomic():
        message = Message.objects.create(
            contact=clearance.contact,
            channel=channel,
            direction=Direction.OUTBOUND,
            message_type=request.message_type,
            content=clearance.content,
            template_name=request.template_name,
            template_language=request.template_language,
            template_parameters=template_parameters or [],
            subject=request.subject,
            html=clearance.html,
            status=MessageStatus.QUEUED,
            origination_phone_number_id=clearance.phone_number_id,
            sender_name=email_channel.sender() if channel == Channel.EMAIL else "",
            segments=clearance.segments,
            whatsapp_payload={"reaction_to": reaction_to} if reaction_to else {},
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            replay_of=replay_of,
            created_at=now,
        )
        if media is not None:
            MediaFile.objects.create(
                message=message,
                s3_key=media.s3_key,
                content_type=media.content_type,
                size=media.size,
                filename=_safe_filename(media.filename) if media.filename else "",
            )
        if audit and getattr(requested_by, "pk", None):
            audit_record(
                user=requested_by,
                action="message.send",
                resource_type="message",
                resource_id=message.pk,
                details={"channel": channel, "messageType": message.message_type, "contactId": str(contact_id)},
            )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(message.pk))
    logger.info(
        "message queued id=%s contactId=%s channel=%s type=%s", message.pk, contact_id, channel, message.message_type
    )
    return message


# --- message_deliver ----------------------------------------------------------------------------


def retry_countdown(attempt: int) -> float:
    """Backoff before retry ``attempt`` (1-based): exponential, capped, with 'equal jitter'."""
    ceiling = min(settings.OUTBOUND_RETRY_MAX_SECONDS, settings.OUTBOUND_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _claim(message: Message, now: datetime) -> bool:
    """Only one worker sends a message: a conditional update, exactly one row must change."""
    claimed = (
        Message.objects.filter(pk=message.pk, status=MessageStatus.QUEUED)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    return claimed == 1


def _release(message: Message, **fields: Any) -> None:
    Message.objects.filter(pk=message.pk).update(locked_until=None, updated_at=timezone.now(), **fields)


def _start_attempt(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
    message.attempts += 1


def _log_dry_run(request: ProviderRequest, message: Message) -> None:
    logger.info("DRY_RUN message=%s would call %s", message.pk, request.describe())


def _count_usage(message: Message, clearance: Clearance, dry_run: bool, now: datetime) -> None:
    template = clearance.template
    key = {
        "day": timezone.localdate(now),
        "channel": message.channel,
        "kind": MessageUsage.Kind.TEMPLATE if template else MessageUsage.Kind.FREE_FORM,
        "template_name": template.name if template else "",
        "template_language": template.language if template else "",
        "category": template.category if template else "",
        "origination_phone_number_id": message.origination_phone_number_id,
        "dry_run": dry_run,
    }
    changes = {
        "count": F("count") + 1,
        "business_initiated": F("business_initiated") + int(clearance.business_initiated),
        "segments": F("segments") + (message.segments or 0),
    }
    if MessageUsage.objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            MessageUsage.objects.create(
                **key,
                count=1,
                business_initiated=int(clearance.business_initiated),
                segments=message.segments or 0,
            )
    except IntegrityError:
        MessageUsage.objects.filter(**key).update(**changes)


def _media_id_known(media_file: MediaFile, phone_number_id: str, now: datetime) -> str:
    """A Meta media id for this file from this number, still valid (uploaded for this or another message)."""
    fresh_after = now - MEDIA_ID_REUSE
    if media_file.whatsapp_media_id and (media_file.whatsapp_media_uploaded_at or now) > fresh_after:
        return media_file.whatsapp_media_id
    other = (
        MediaFile.objects.filter(
            s3_key=media_file.s3_key,
            message__origination_phone_number_id=phone_number_id,
            whatsapp_media_uploaded_at__gt=fresh_after,
        )
        .exclude(whatsapp_media_id="")
        .order_by("-whatsapp_media_uploaded_at")
        .first()
    )
    return other.whatsapp_media_id if other else ""


def _whatsapp_send(message: Message, clearance: Clearance, dry_run: bool, now: datetime) -> tuple[str, str]:
    phone = clearance.phone_number_id
    to = clearance.contact.phone
    callback = str(message.pk)
    if message.message_type == MessageType.TEMPLATE:
        template = clearance.template
        payload = whatsapp_channel.template_payload(
            to=to,
            name=template.name,
            language=template.language,
            parameters=message.template_parameters,
            callback_data=callback,
        )
        ratelimit.rate_limit_acquire(ratelimit.whatsapp_send_buckets(phone))
    elif message.message_type in whatsapp_channel.MEDIA_TYPES:
        media_file = message.media.order_by("uploaded_at").first()
        media_id = _media_id_known(media_file, phone, now)
        upload = None
        buckets = ratelimit.whatsapp_send_buckets(phone)
        if not media_id:
            upload = whatsapp_channel.media_upload_request(
                phone_number_id=phone, bucket=settings.MEDIA_BUCKET, key=media_file.s3_key
            )
            buckets = ratelimit.whatsapp_media_buckets() + buckets
        ratelimit.rate_limit_acquire(buckets)
        if upload is not None:
            _start_attempt(message)
            if dry_run:
                _log_dry_run(upload, message)
                media_id = DRY_RUN_MEDIA_ID
            else:
                media_id = whatsapp_channel.upload_media(upload)
                MediaFile.objects.filter(pk=media_file.pk).update(
                    whatsapp_media_id=media_id, whatsapp_media_uploaded_at=timezone.now()
                )
        payload = whatsapp_channel.media_payload(
            to=to,
            media_type=message.message_type,
            media_id=media_id,
            caption=message.content,
            filename=media_file.filename,
            callback_data=callback,
        )
        request = whatsapp_channel.send_request(phone_number_id=phone, payload=payload)
        if upload is None:
            _start_attempt(message)
        return _execute(request, whatsapp_channel.send, message, dry_run)
    elif message.message_type == MessageType.REACTION:
        payload = whatsapp_channel.reaction_payload(
            to=to,
            target_message_id=(message.whatsapp_payload or {}).get("reaction_to", ""),
            emoji=message.content,
            callback_data=callback,
        )
        ratelimit.rate_limit_acquire(ratelimit.whatsapp_send_buckets(phone))
    else:
        payload = whatsapp_channel.text_payload(to=to, body=message.content, callback_data=callback)
        ratelimit.rate_limit_acquire(ratelimit.whatsapp_send_buckets(phone))
    request = whatsapp_channel.send_request(phone_number_id=phone, payload=payload)
    _start_attempt(message)
    return _execute(request, whatsapp_channel.send, message, dry_run)


def _execute(request: ProviderRequest, send, message: Message, dry_run: bool) -> tuple[str, str]:
    if dry_run:
        _log_dry_run(request, message)
        return "", ""
    with metrics.timed("ProviderLatency", channel=message.channel):
        return send(request)


def _provider_send(message: Message, clearance: Clearance, dry_run: bool, now: datetime) -> tuple[str, str]:
    """Rate-limit, then call the channel; returns (provider message id, request id), ("", "") in DRY_RUN."""
    if message.channel == Channel.WHATSAPP:
        return _whatsapp_send(message, clearance, dry_run, now)
    if message.channel == Channel.SMS:
        request = sms_channel.send_request(to=clearance.contact.phone, body=message.content)
        ratelimit.rate_limit_acquire(ratelimit.sms_buckets())
        _start_attempt(message)
        return _execute(request, sms_channel.send, message, dry_run)
    request = email_channel.send_request(
        to=clearance.contact.email,
        subject=message.subject,
        text=message.content,
        html=message.html,
        message_id=str(message.pk),
    )
    ratelimit.rate_limit_acquire(ratelimit.email_buckets())
    _start_attempt(message)
    return _execute(request, email_channel.send, message, dry_run)


def _finish_sent(message: Message, provider_id: str, request_id: str, dry_run: bool, now: datetime) -> Message:
    with transaction.atomic():
        row = Message.objects.select_for_update().get(pk=message.pk)
        row.provider_message_id = provider_id
        row.dry_run = dry_run
        row.locked_until = None
        row.error_code = ""
        row.error_details = {"requestId": request_id} if request_id else {}
        # A status event may already have moved it further (delivered before we got here).
        if status_may_advance(row.status, MessageStatus.SENT):
            row.status = MessageStatus.SENT
            row.sent_at = now
        row.save(
            update_fields=[
                "provider_message_id",
                "dry_run",
                "locked_until",
                "error_code",
                "error_details",
                "status",
                "sent_at",
                "updated_at",
            ]
        )
    logger.info(
        "message %s id=%s channel=%s provider_id=%s attempts=%s",
        "dry-run (not sent)" if dry_run else "sent",
        row.pk,
        row.channel,
        provider_id or "-",
        row.attempts,
    )
    metrics.emit("MessagesSent", channel=row.channel)
    return row


def _finish_failed(message: Message, code: str, details: dict, now: datetime) -> Message:
    with transaction.atomic():
        row = Message.objects.select_for_update().get(pk=message.pk)
        row.locked_until = None
        if status_may_advance(row.status, MessageStatus.FAILED):
            row.status = MessageStatus.FAILED
            row.failed_at = now
            row.error_code = code[:64]
            row.error_details = details
        row.save(update_fields=["locked_until", "status", "failed_at", "error_code", "error_details", "updated_at"])
    return row


def _dlq_payload(message: Message) -> dict:
    media = message.media.order_by("uploaded_at").first()
    return {
        "messageId": str(message.pk),
        "contactId": str(message.contact_id),
        "channel": message.channel,
        "messageType": message.message_type,
        "content": message.content[:4096],
        "templateName": message.template_name,
        "templateLanguage": message.template_language,
        "templateParameters": message.template_parameters,
        "subject": message.subject,
        "originationPhoneNumberId": message.origination_phone_number_id,
        "mediaS3Key": media.s3_key if media else "",
        "attempts": message.attempts,
        "errorCode": message.error_code,
        "errorDetails": message.error_details,
    }


def _dead_letter(message: Message, error: str) -> None:
    metrics.emit("MessagesFailed", channel=message.channel)  # every final failure but a gate refusal
    try:
        dlq_send(
            queue=settings.QUEUE_OUTBOUND_DLQ,
            original_message_id=str(message.pk),
            payload=_dlq_payload(message),
            error=error,
        )
    except Exception:  # the failure is recorded on the message; the DLQ row (if written) keeps the payload
        logger.exception("message %s failed and could not be dead-lettered", message.pk)


def message_deliver(message_id, *, now: datetime | None = None) -> Message:
    """Send one queued message now (see module docstring). Raises DeliveryDeferred to be retried."""
    now = now or timezone.now()
    message = Message.objects.select_related("contact").get(pk=message_id)
    if message.direction != Direction.OUTBOUND:
        raise ValueError(f"message {message_id} is {message.direction}, not outbound")
    logs.log_bind(message_id=message.pk, contact_id=message.contact_id)
    if message.status != MessageStatus.QUEUED:
        return message  # already sent, failed or further: at-least-once delivery of the task
    if not _claim(message, now):
        logger.info("message %s is being sent by another worker", message.pk)
        return message

    request = SendRequest.from_message(message)
    try:
        # The contact as loaded with the message a moment ago: deleted or opted out is seen here too.
        clearance = safety_check(request, now=now, contact=message.contact, reserve_tier=True)
    except SafetyRefusal as refusal:
        row = _finish_failed(
            message, refusal.code, {"code": refusal.code, "reason": refusal.reason, "stage": "delivery"}, now
        )
        logger.info("message %s refused at delivery: %s", message.pk, refusal)
        return row
    except INFRASTRUCTURE_ERRORS as exc:
        return _infrastructure_trouble(message, exc, now)
    except Exception:
        _release(message)
        raise

    dry_run = settings.SEND_MODE != "LIVE"
    try:
        provider_id, request_id = _provider_send(message, clearance, dry_run, now)
    except ratelimit.RateLimited as limited:
        _release(message)
        raise DeliveryDeferred(limited.retry_after, str(limited)) from limited
    except ChannelError as error:
        details = {**error.as_details(), "attempts": message.attempts}
        if not error.permanent and message.attempts <= settings.OUTBOUND_MAX_RETRIES:
            countdown = retry_countdown(message.attempts)
            _release(message, error_details={**_kept(message), "lastError": details, "retryIn": round(countdown, 2)})
            logger.warning(
                "message %s attempt %s failed, retry in %.1fs: %s", message.pk, message.attempts, countdown, error
            )
            raise DeliveryDeferred(countdown, str(error)) from error
        row = _finish_failed(message, error.code, details, now)
        logger.error("message %s failed after %s attempt(s): %s", message.pk, message.attempts, error)
        alerts.provider_error_final(error, channel=message.channel)
        _dead_letter(row, str(error))
        return row
    except INFRASTRUCTURE_ERRORS as exc:
        return _infrastructure_trouble(message, exc, now)
    except Exception:
        _release(message)
        raise
    row = _finish_sent(message, provider_id, request_id, dry_run, timezone.now())
    _count_usage(row, clearance, dry_run, now)
    return row


def _kept(message: Message) -> dict:
    """What of the error details survives a retry: the count of infrastructure retries."""
    retries = (message.error_details or {}).get("infrastructureRetries")
    return {"infrastructureRetries": retries} if retries else {}


def _infrastructure_trouble(message: Message, exc: Exception, now: datetime) -> Message:
    """DynamoDB or S3 failed (not the provider): retry later; past INFRASTRUCTURE_MAX_RETRIES fail visibly."""
    retries = int((message.error_details or {}).get("infrastructureRetries", 0)) + 1
    details = {"code": "INFRASTRUCTURE_ERROR", "message": f"{type(exc).__name__}: {exc}"[:2000]}
    if retries <= INFRASTRUCTURE_MAX_RETRIES:
        countdown = retry_countdown(retries)
        _release(message, error_details={"lastError": details, "infrastructureRetries": retries})
        logger.warning("message %s: infrastructure error, retry %s in %.1fs: %s", message.pk, retries, countdown, exc)
        raise DeliveryDeferred(countdown, details["message"]) from exc
    row = _finish_failed(message, "INTERNAL_ERROR", {**details, "infrastructureRetries": retries - 1}, now)
    logger.error("message %s failed: infrastructure error after %s retries: %s", message.pk, retries - 1, exc)
    _dead_letter(row, details["message"])
    return row


def message_fail_unexpected(message_id, *, error: str) -> Message | None:
    """A delivery crashed on something that is not a provider error (a bug, the database): fail the
    message visibly and dead-letter it, rather than leave it queued forever."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.status != MessageStatus.QUEUED:
        return message
    row = _finish_failed(message, "INTERNAL_ERROR", {"code": "INTERNAL_ERROR", "message": error[:2000]}, timezone.now())
    _dead_letter(row, error)
    return row


# --- Courtesies on inbound WhatsApp messages (messaging.inbound) ---------------------------------


def whatsapp_react(*, message: Message, emoji: str, requested_by=None) -> Message:
    """React to an inbound WhatsApp message from the number it came to: a queued outbound message."""
    return message_send(
        contact_id=message.contact_id,
        channel=Channel.WHATSAPP,
        text=emoji,
        reaction_to=message.whatsapp_message_id or "",
        origination_phone_number_id=message.origination_phone_number_id,
        requested_by=requested_by,
        audit=requested_by is not None,
    )


def whatsapp_mark_as_read(*, message: Message, now: datetime | None = None) -> None:
    """Blue ticks for an inbound WhatsApp message, now (not stored as a message).

    Through the gate like any send (opt-in, allowlisted number, 24-hour window); rate-limited on the
    receiving number; DRY_RUN logs the request. Raises SafetyRefusal, RateLimited or ChannelError.
    """
    request = SendRequest(
        contact_id=message.contact_id,
        channel=Channel.WHATSAPP,
        message_type=READ_RECEIPT,
        origination_phone_number_id=message.origination_phone_number_id,
        target_whatsapp_message_id=message.whatsapp_message_id or "",
    )
    clearance = safety_check(request, now=now)
    provider_request = whatsapp_channel.send_request(
        phone_number_id=clearance.phone_number_id,
        payload=whatsapp_channel.read_receipt_payload(target_message_id=request.target_whatsapp_message_id),
    )
    ratelimit.rate_limit_acquire(ratelimit.whatsapp_send_buckets(clearance.phone_number_id))
    if settings.SEND_MODE != "LIVE":
        _log_dry_run(provider_request, message)
        return
    whatsapp_channel.send(provider_request)


# --- DLQ replay ---------------------------------------------------------------------------------


def handle_outbound_dlq_payload(payload: dict) -> Message:
    """Replay one dead-lettered outbound message (the outbound-dlq handler of messaging.dlq).

    The failed message stays failed (status only moves forward); its replay is a new message with
    ``replay_of`` pointing at the original, sent through message_send: the gate decides again
    (consent may have been withdrawn, the number removed from the allowlist). Raises on refusal,
    so the DLQ keeps the payload and eventually parks it for a human.
    """
    message_id = payload.get("messageId") if isinstance(payload, dict) else None
    original = Message.objects.filter(pk=message_id).first() if _is_uuid(message_id) else None
    if original is None:
        raise ValueError(f"outbound DLQ payload names no known message: {message_id!r}")
    root = original.replay_of or original
    replays = Message.objects.filter(replay_of=root).order_by("-created_at")
    pending = replays.exclude(status=MessageStatus.FAILED).first()
    if pending is not None:
        return pending  # replayed already (a duplicate DLQ copy)
    if original.status != MessageStatus.FAILED:
        return original
    if replays.count() >= MAX_REPLAYS:
        raise RuntimeError(f"message {root.pk} was replayed {MAX_REPLAYS} times already; not again")
    media_file = original.media.order_by("uploaded_at").first()
    media = (
        OutgoingMedia(
            content_type=media_file.content_type,
            size=media_file.size or 0,
            filename=media_file.filename,
            s3_key=media_file.s3_key,
        )
        if media_file
        else None
    )
    replay = message_send(
        contact_id=original.contact_id,
        channel=original.channel,
        text="" if original.message_type == MessageType.TEMPLATE else original.content,
        media=media,
        media_type=original.message_type if media else "",
        template_name=original.template_name,
        template_language=original.template_language,
        template_parameters=original.template_parameters,
        subject=original.subject,
        html=original.html,
        origination_phone_number_id=original.origination_phone_number_id,
        reaction_to=(original.whatsapp_payload or {}).get("reaction_to", ""),
        requested_by=original.requested_by,
        audit=False,
        replay_of=root,
    )
    logger.info("message %s replayed from the outbound DLQ as %s", original.pk, replay.pk)
    return replay
