"""message_deliver: one queued message to its provider, exactly once, with every attempt recorded.

Claim the message (a conditional update: a second copy of the task does nothing), let the gate look
again (consent may have changed; the tier is reserved here), then hand it to its channel's provider
(`messaging.channels.provider_for`): prepare (WhatsApp media upload), take rate-limit tokens,
re-check consent in one query right before the send, call. Each provider call is a ProviderAttempt
row. DRY_RUN is not decided here: the provider boundary (`messaging.channels.base.call`) decides it
and this module only reads the result.

The outcome is final (sent, or failed with the gate's or the provider's code; then the payload goes
to outbound-dlq too), or `DeliveryDeferred(countdown, reason)`: the message stays queued and the
caller tries again after ``countdown`` (rate limit, transient provider error, our own infrastructure).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from pynamodb.exceptions import PynamoDBException

from messaging import ratelimit
from messaging.channels import ChannelError, Delivery, Provider, ProviderRequest, ProviderResult, provider_for
from messaging.dlq import dlq_send
from messaging.models import Direction, Message, MessageStatus, MessageUsage, ProviderAttempt, status_may_advance
from messaging.outbound.attempts import attempt_crashed, attempt_finish, attempt_finish_fields, attempt_start
from messaging.outbound.request import SendRequest
from messaging.outbound.statements import message_claim_returning, sent_record
from messaging.safety import Clearance, SafetyRefusal, safety_check, safety_consent_recheck
from messaging.tier import tier_give_back
from wecare import alerts, logs, metrics
from wecare.errors import RetryLater
from wecare.retry import backoff_seconds

logger = logging.getLogger(__name__)

# A worker holds a message this long while sending it; longer than any single delivery attempt
# (rate-limit wait + media upload + send, each bounded by the AWS timeouts).
CLAIM_SECONDS = 120
# Our own infrastructure (DynamoDB for rate limits and tier, S3) failing before the provider call:
# retried with the same backoff this many times, then the message fails visibly (INTERNAL_ERROR).
INFRASTRUCTURE_MAX_RETRIES = 5
INFRASTRUCTURE_ERRORS = (PynamoDBException, BotoCoreError, ClientError)
# A send whose worker died during the provider call: the provider may have it; never sent twice.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"


class DeliveryDeferred(RetryLater):  # noqa: N818 - a state, not a failure
    """Not now: deliver this message again after ``countdown`` seconds. It stays queued."""

    code = "DELIVERY_DEFERRED"

    def __init__(self, countdown: float, reason: str):
        super().__init__(f"deferred {countdown:.2f}s: {reason}")
        self.countdown = max(0.0, countdown)
        self.retry_after = self.countdown
        self.reason = reason


def retry_countdown(attempt: int) -> float:
    """Backoff before retry ``attempt`` (1-based), by the platform's one rule (wecare.retry)."""
    return backoff_seconds(attempt, base=settings.OUTBOUND_RETRY_BASE_SECONDS, cap=settings.OUTBOUND_RETRY_MAX_SECONDS)


def _claim(message: Message, now: datetime) -> bool:
    """Only one worker sends a message: a conditional update, exactly one row must change."""
    claimed = (
        Message.objects.filter(pk=message.pk, status=MessageStatus.QUEUED)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    return claimed == 1


def _claim_with_contact(message_id, now: datetime) -> tuple[Message, bool] | None:
    """PostgreSQL: the claim and the read of the message, its contact and the contact's suppression
    flag in one statement. (message, taken over from a worker that never finished) or None: not claimed."""
    return message_claim_returning(message_id, now=now, until=now + timedelta(seconds=CLAIM_SECONDS))


def _release(message: Message, **fields: Any) -> None:
    """Let go of the message (it stays queued), keeping the count of provider attempts made."""
    Message.objects.filter(pk=message.pk).update(
        locked_until=None, attempts=message.attempts, updated_at=timezone.now(), **fields
    )


def _attempt(
    message: Message,
    provider: Provider,
    request: ProviderRequest,
    parse,
    *,
    consent: SendRequest | None = None,
    now: datetime | None = None,
    finish_later: bool = False,
) -> tuple[ProviderResult, Any, ProviderAttempt | None]:
    """One provider call as one ProviderAttempt row; ``parse(result)`` checks the answer. With
    ``finish_later`` a successful attempt is returned unfinished: the caller records it with the message.

    With ``consent`` (a send to a person) the row is only written if the contact is still opted in and
    not deleted, in the same statement, right before the call; else the gate says why (SafetyRefusal).
    """
    attempt = attempt_start(message, request, while_consented=consent)
    if attempt is None:
        safety_consent_recheck(consent, now=now)  # which rule failed: logged, counted, raised
        # Consent came back between the two reads: fail closed all the same, nothing was sent.
        raise SafetyRefusal("OPT_IN_REQUIRED", "the contact's consent changed while the send was starting")
    message.attempts += 1
    started = time.perf_counter()
    try:
        result = provider.call(request)
        value = parse(result)
    except ChannelError as error:
        metrics.emit("ProviderLatency", _elapsed_ms(started), channel=message.channel)
        attempt_finish(attempt, error=error)
        raise
    except BaseException as exc:
        attempt_crashed(attempt, exc)
        raise
    if not result.dry_run:
        metrics.emit("ProviderLatency", _elapsed_ms(started), channel=message.channel)
    if finish_later:
        return result, value, attempt
    attempt_finish(attempt, result=result, provider_message_id=value if isinstance(value, str) else "")
    return result, value, None


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _provider_send(provider: Provider, delivery: Delivery) -> tuple[ProviderResult, str, ProviderAttempt | None]:
    """Prepare, take tokens, re-check consent, send; returns the send's result, provider message id and
    (PostgreSQL) its attempt, still to be finished together with the message (`_sent`)."""
    upload = provider.prepare(delivery)
    ratelimit.rate_limit_acquire(provider.buckets(delivery))
    if upload is not None:
        _attempt(delivery.message, provider, upload, lambda result: provider.prepared(delivery, result))
    request = provider.send_request(delivery)
    # The tokens and the upload may have taken a while: consent is read once more, right before the
    # call, in the statement that records the attempt.
    together = connection.vendor == "postgresql"
    return _attempt(
        delivery.message,
        provider,
        request,
        provider.sent,
        consent=delivery.request,
        now=delivery.now,
        finish_later=together,
    )


def _sent_fields(message: Message, provider_id: str, request_id: str, dry_run: bool) -> dict:
    return {
        "provider_message_id": provider_id,
        "dry_run": dry_run,
        "locked_until": None,
        "error_code": "",
        "error_details": {"requestId": request_id} if request_id else {},
        "attempts": message.attempts,
        "updated_at": timezone.now(),
    }


def _sent(
    message: Message,
    attempt: ProviderAttempt | None,
    provider_id: str,
    result: ProviderResult,
    clearance: Clearance,
    now: datetime,
) -> Message:
    """Record a send the provider took: the attempt finished, the message sent, the usage counted. One
    statement on PostgreSQL (``attempt`` unfinished), else one by one (``attempt`` finished already)."""
    if attempt is None:
        row = _finish_sent(message, provider_id, result.request_id, result.dry_run, timezone.now())
        _count_usage(row, clearance, result.dry_run, now)
        return row
    sent_at = timezone.now()
    fields = _sent_fields(message, provider_id, result.request_id, result.dry_run)
    still_queued = sent_record(
        attempt=(
            ProviderAttempt.objects.filter(pk=attempt.pk),
            attempt_finish_fields(attempt, result=result, provider_message_id=provider_id),
        ),
        message=(
            Message.objects.filter(pk=message.pk, status=MessageStatus.QUEUED),
            {**fields, "status": MessageStatus.SENT, "sent_at": sent_at},
        ),
        usage=_usage_row(message, clearance, result.dry_run, now),
        counters=("count", "business_initiated", "segments"),
    )
    return _finish_sent(message, provider_id, result.request_id, result.dry_run, sent_at, written=still_queued)


def _finish_sent(
    message: Message,
    provider_id: str,
    request_id: str,
    dry_run: bool,
    now: datetime,
    *,
    written: bool = False,
) -> Message:
    """One UPDATE in the usual case (the message still queued; ``written``: done already, by `_sent`);
    a status event that overtook us wins."""
    fields = _sent_fields(message, provider_id, request_id, dry_run)
    if written or Message.objects.filter(pk=message.pk, status=MessageStatus.QUEUED).update(
        **fields, status=MessageStatus.SENT, sent_at=now
    ):
        for name, value in fields.items():
            setattr(message, name, value)
        message.status, message.sent_at = MessageStatus.SENT, now
    else:
        # A status event overtook us (delivered, read): keep its status, record the send.
        Message.objects.filter(pk=message.pk).update(**fields)
        message.refresh_from_db()
    logger.info(
        "message %s id=%s channel=%s provider_id=%s attempts=%s",
        "dry-run (not sent)" if dry_run else "sent",
        message.pk,
        message.channel,
        provider_id or "-",
        message.attempts,
    )
    metrics.emit("MessagesSent", channel=message.channel)
    return message


def _finish_failed(message: Message, code: str, details: dict, now: datetime) -> Message:
    with transaction.atomic():
        row = Message.objects.select_for_update().get(pk=message.pk)
        row.locked_until = None
        row.attempts = max(row.attempts, message.attempts)
        if status_may_advance(row.status, MessageStatus.FAILED):
            row.status = MessageStatus.FAILED
            row.failed_at = now
            row.error_code = code[:64]
            row.error_details = details
        row.save(
            update_fields=[
                "locked_until",
                "attempts",
                "status",
                "failed_at",
                "error_code",
                "error_details",
                "updated_at",
            ]
        )
    return row


def _usage_row(message: Message, clearance: Clearance, dry_run: bool, now: datetime) -> MessageUsage:
    """This send's count, as a new usage row (`statements.sent_record` adds it to the day's row)."""
    template = clearance.template
    return MessageUsage(
        day=timezone.localdate(now),
        channel=message.channel,
        kind=MessageUsage.Kind.TEMPLATE if template else MessageUsage.Kind.FREE_FORM,
        template_name=template.name if template else "",
        template_language=template.language if template else "",
        category=template.category if template else "",
        origination_phone_number_id=message.origination_phone_number_id,
        dry_run=dry_run,
        count=1,
        business_initiated=int(clearance.business_initiated),
        segments=message.segments or 0,
    )


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
        "options": message.options,
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


def _refused(message: Message, refusal: SafetyRefusal, stage: str, now: datetime) -> Message:
    row = _finish_failed(message, refusal.code, {"code": refusal.code, "reason": refusal.reason, "stage": stage}, now)
    logger.info("message %s refused at %s: %s", message.pk, stage, refusal)
    return row


def message_deliver(message_id, *, now: datetime | None = None) -> Message:
    """Send one queued message now (see the module docstring). Raises DeliveryDeferred to be retried."""
    now = now or timezone.now()
    claimed = _claim_with_contact(message_id, now) if connection.vendor == "postgresql" else None
    if claimed is not None:
        message, taken_over = claimed
        logs.log_bind(message_id=message.pk, contact_id=message.contact_id)
    else:
        message = Message.objects.select_related("contact").get(pk=message_id)
        if message.direction != Direction.OUTBOUND:
            raise ValueError(f"message {message_id} is {message.direction}, not outbound")
        logs.log_bind(message_id=message.pk, contact_id=message.contact_id)
        if message.status != MessageStatus.QUEUED:
            return message  # already sent, failed or further: at-least-once delivery of the task
        taken_over = message.locked_until is not None  # a worker claimed it before us and never finished
        if connection.vendor == "postgresql" or not _claim(message, now):
            logger.info("message %s is being sent by another worker", message.pk)
            return message
    if taken_over and (settled := _settle_from_attempts(message, now)) is not None:
        return settled

    request = SendRequest.from_message(message)
    try:
        # The contact as loaded with the message a moment ago: deleted or opted out is seen here too.
        clearance = safety_check(request, now=now, contact=message.contact, reserve_tier=True)
    except SafetyRefusal as refusal:
        return _refused(message, refusal, "delivery", now)
    except INFRASTRUCTURE_ERRORS as exc:
        return _infrastructure_trouble(message, exc, now)
    except Exception:
        _release(message)
        raise

    delivery = Delivery(message=message, clearance=clearance, now=now, request=request)
    try:
        result, provider_id, attempt = _provider_send(provider_for(message.channel), delivery)
    except SafetyRefusal as refusal:
        _tier_give_back(message, clearance, now)
        return _refused(message, refusal, "provider call", now)
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
        _tier_give_back(message, clearance, now)
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
    row = _sent(message, attempt, provider_id, result, clearance, now)
    record_sent(provider_for(message.channel), [row.pk], dry_run=result.dry_run)
    return row


def record_sent(provider: Provider, message_ids: list, *, dry_run: bool) -> None:
    """The channel's own record of sends (`Provider.record_sent`); the messages are sent already, so a
    failure is only logged."""
    try:
        provider.record_sent(message_ids, dry_run=dry_run)
    except Exception:
        logger.exception("%s message(s) sent, but their %s record failed", len(message_ids), provider.channel)


def _tier_give_back(message: Message, clearance: Clearance, now: datetime) -> None:
    """A business-initiated send that will not go out gives back the tier place its gate took at ``now``."""
    if clearance.business_initiated:
        tier_give_back(clearance.phone_number_id, message.contact_id, opened_at=now)


def _settle_from_attempts(message: Message, now: datetime) -> Message | None:
    """A message whose previous worker died holding it: what its attempt rows say decides, never a guess.

    The send answered (succeeded or dry run) → the message is sent, with the recorded ids; the send
    was started with no answer recorded → the provider may have it: failed OUTCOME_UNKNOWN, never
    sent twice; no send started (or only errors) → None: deliver as usual.
    """
    last = (
        ProviderAttempt.objects.filter(message_id=message.pk, operation=provider_for(message.channel).send_operation)
        .order_by("-started_at", "-id")
        .first()
    )
    if last is None:
        return None
    message.attempts = max(message.attempts, message.provider_attempts.count())
    if last.outcome in (ProviderAttempt.Outcome.SUCCEEDED, ProviderAttempt.Outcome.DRY_RUN):
        logger.warning("message %s: its previous worker died after the provider accepted it", message.pk)
        return _finish_sent(
            message,
            last.provider_message_id,
            last.provider_request_id,
            last.outcome == ProviderAttempt.Outcome.DRY_RUN,
            last.finished_at or now,
        )
    if last.outcome == ProviderAttempt.Outcome.STARTED:
        details = {
            "code": OUTCOME_UNKNOWN,
            "message": "the worker stopped during the provider call; not resent. Check before sending again.",
            "attemptId": last.pk,
        }
        logger.error("message %s: outcome unknown, its worker died during the provider call", message.pk)
        return _finish_failed(message, OUTCOME_UNKNOWN, details, now)
    return None


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
