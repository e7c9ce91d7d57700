"""Stored SNS notifications (InboundEvent): receive, process, fail to the DLQ, replay from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from messaging.dlq import dlq_send
from messaging.feedback.events import feedback_process, feedback_record
from messaging.inbound.messages import inbound_message_receive
from messaging.inbound.payload import (
    InboundPayloadError,
    _text,
    decode_envelope,
    is_eum_message,
    receiving_phone_number_id,
)
from messaging.inbound.sms_voice_events import sms_voice_event_apply, sms_voice_record
from messaging.inbound.statuses import status_apply, status_check, statuses_apply
from messaging.models import InboundEvent
from messaging.sns import NOTIFICATION, sns_message
from wecare import metrics

logger = logging.getLogger(__name__)


@dataclass
class ProcessSummary:
    # Not an EUM Social event (e.g. a tier alert published to the same topic): kept, not processed.
    not_eum: bool = False
    # An SES event, SMS receipt or inbound SMS (messaging.feedback): what was done with it.
    feedback: str = ""
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    statuses_applied: list[str] = field(default_factory=list)
    statuses_ignored: list[str] = field(default_factory=list)


def notification_process(body: dict[str, Any]) -> ProcessSummary:
    """Process one SNS Notification body (already verified). Idempotent: safe to run again."""
    message = sns_message(body)  # parsed once; what kind of event it is is told from it
    is_notification = isinstance(body, dict) and body.get("Type") == NOTIFICATION
    # SES and SMS feedback first: an SMS event may carry a "context" key, as EUM Social's envelope does.
    if is_notification and feedback_record(message) is not None:
        return ProcessSummary(not_eum=True, feedback=feedback_process(body, message=message))
    if (event := sms_voice_record(message)) is not None:  # a voice call or RCS event of EUM SMS
        summary = ProcessSummary()
        applied = sms_voice_event_apply(event)
        (summary.statuses_applied if applied else summary.statuses_ignored).append(str(event.get("messageId")))
        return summary
    if is_notification and not is_eum_message(message):
        logger.info(
            "SNS message %s on the topic is not an EUM Social event (subject %r): kept, nothing to process",
            body.get("MessageId"),
            body.get("Subject", ""),
        )
        return ProcessSummary(not_eum=True)
    if not is_notification:
        raise InboundPayloadError("Not an SNS Notification.")
    envelope, entry = decode_envelope(message)
    summary = ProcessSummary()
    envelope_message_id = _text(envelope.get("messageId"))
    for change in entry["changes"]:
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            raise InboundPayloadError("A change has no value.")
        value = change["value"]
        if change.get("field", "messages") != "messages":
            logger.info("inbound change of field %r ignored", change.get("field"))
            continue
        metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        receiving = receiving_phone_number_id(envelope["context"], metadata.get("phone_number_id"))
        if receiving not in settings.WHATSAPP_PHONE_NUMBER_IDS:
            logger.warning("inbound event for %s, which is not in WHATSAPP_PHONE_NUMBER_IDS", receiving)
        names = {}
        for profile in value.get("contacts") or []:
            if isinstance(profile, dict):
                name = _text((profile.get("profile") or {}).get("name"))
                for key in (_text(profile.get("wa_id")), _text(profile.get("user_id"))):
                    if key:
                        names[key] = name
        for raw in value.get("messages") or []:
            if not isinstance(raw, dict):
                raise InboundPayloadError("A message is not a JSON object.")
            message, created = inbound_message_receive(
                raw=raw,
                receiving=receiving,
                sender_name=names.get(_text(raw.get("from")) or _text(raw.get("from_user_id")), ""),
            )
            (summary.stored if created else summary.duplicates).append(_text(raw.get("id")))
        for status in value.get("statuses") or []:
            if not isinstance(status, dict):
                raise InboundPayloadError("A status is not a JSON object.")
            applied = status_apply(status=status, envelope_message_id=envelope_message_id)
            (summary.statuses_applied if applied else summary.statuses_ignored).append(_text(status.get("id")))
        for error in value.get("errors") or []:
            logger.warning("inbound event carries a WhatsApp error: %s", error)
    return summary


def _event_insert_once(*, sns_message_id: str, topic_arn: str, body: dict[str, Any]) -> InboundEvent | None:
    """Store the event unless its SNS MessageId is stored already; None if it was.

    One statement, INSERT … ON CONFLICT DO NOTHING RETURNING, on the endpoint's hot path (the ORM's
    get_or_create takes a SELECT, a transaction and an INSERT) and without an exception to recover
    from, so it is also safe inside an outer transaction.
    """
    event = InboundEvent(sns_message_id=sns_message_id, topic_arn=topic_arn, body=body)
    fields = InboundEvent._meta.concrete_fields
    quote = connection.ops.quote_name
    # Only names from the model, quoted, go into the text; every value is a parameter.
    table = quote(InboundEvent._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    unique = quote(InboundEvent._meta.get_field("sns_message_id").column)
    pk = quote(InboundEvent._meta.pk.column)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({unique}) DO NOTHING RETURNING {pk}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in fields])
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    event._state.adding = False
    event._state.db = connection.alias
    return event


def inbound_event_receive(
    *, sns_message_id: str, topic_arn: str, body: dict[str, Any]
) -> tuple[InboundEvent | None, bool]:
    """Store a verified notification, once per SNS MessageId: the webhook's only write.

    Returns (event, stored). No broker call here: the row is in the outbox (pending, not relayed)
    and the relay (messaging.inbound.outbox) hands it to the workers in a batch, or later if the
    broker is down. A redelivery returns (None, False): the first copy is stored, and if it is still
    pending the relay takes care of it.
    """
    event = _event_insert_once(sns_message_id=sns_message_id, topic_arn=topic_arn, body=body)
    if event is None:
        logger.info("SNS message %s again: already stored", sns_message_id)
        return None, False
    return event, True


def _mark_processed(event_id) -> None:
    InboundEvent.objects.filter(pk=event_id).update(
        status=InboundEvent.Status.PROCESSED, processed_at=timezone.now(), error=""
    )


def inbound_event_process(*, event_id) -> ProcessSummary | None:
    """Process a stored InboundEvent (the Celery task's body). Raises on failure, for the task to retry."""
    event = InboundEvent.objects.get(pk=event_id)
    if event.status == InboundEvent.Status.PROCESSED:
        return None
    summary = notification_process(event.body)
    _mark_processed(event.pk)
    metrics.emit("InboundEventsProcessed")
    logger.info(
        "inbound event %s processed: stored=%s duplicates=%s statuses=%s feedback=%s",
        event.pk,
        summary.stored,
        summary.duplicates,
        summary.statuses_applied,
        summary.feedback or "-",
    )
    return summary


def inbound_event_fail(*, event_id, error: str) -> None:
    """Processing gave up: dead-letter the event (inbound-dlq) for replay, then mark it failed.

    Marked failed only once it is in the DLQ; if even that fails, it is marked failed saying so
    (the DLQMessage row, written first, keeps the payload) and the error is raised.
    """
    event = InboundEvent.objects.get(pk=event_id)
    metrics.emit("InboundEventsFailed")
    try:
        dlq_send(
            queue=settings.QUEUE_INBOUND_DLQ,
            original_message_id=event.sns_message_id,
            payload=event.body,
            error=error,
        )
    except Exception as exc:
        error = f"{error}\n(could not be dead-lettered: {type(exc).__name__}: {exc})"
        raise
    finally:
        InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, error=error[:10000])


def handle_dlq_payload(payload: dict[str, Any]) -> ProcessSummary:
    """Replay one dead-lettered notification (the stored SNS body) through the same processing."""
    if not isinstance(payload, dict) or not isinstance(payload.get("MessageId"), str):
        raise InboundPayloadError("The DLQ payload is not a stored SNS notification.")
    event, _ = InboundEvent.objects.get_or_create(
        sns_message_id=payload["MessageId"], defaults={"topic_arn": str(payload.get("TopicArn", "")), "body": payload}
    )
    try:
        summary = notification_process(payload)
    except Exception as exc:
        InboundEvent.objects.filter(pk=event.pk).update(
            status=InboundEvent.Status.FAILED, error=f"replay: {type(exc).__name__}: {exc}"[:10000]
        )
        raise
    _mark_processed(event.pk)
    return summary


@dataclass
class BatchSummary:
    processed: list[str] = field(default_factory=list)  # event ids done in the batch
    one_by_one: list[str] = field(default_factory=list)  # event ids carrying messages: the per-event path
    statuses_moved: int = 0
    failed: list[str] = field(default_factory=list)  # malformed: dead-lettered


def _status_only(message: dict[str, Any]) -> list[tuple[dict[str, Any], str]] | None:
    """The (status, envelope message id) items of an EUM event (a notification's parsed Message)
    that carries only statuses; None if it carries anything else (messages, other fields), which
    the per-event path handles."""
    envelope, entry = decode_envelope(message)
    envelope_message_id = _text(envelope.get("messageId"))
    items = []
    for change in entry["changes"]:
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            raise InboundPayloadError("A change has no value.")
        value = change["value"]
        if change.get("field", "messages") != "messages" or value.get("messages") or value.get("errors"):
            return None
        metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        receiving_phone_number_id(envelope["context"], metadata.get("phone_number_id"))  # validates
        for status in value.get("statuses") or []:
            if not isinstance(status, dict):
                raise InboundPayloadError("A status is not a JSON object.")
            status_check(status)  # one bad status fails its event here, not the whole batch later
            items.append((status, envelope_message_id))
    return items


def inbound_events_process(*, event_ids: list[str]) -> BatchSummary:
    """Process many stored events at once (the batch task's body).

    Notifications that carry only statuses (most of them: sent, delivered, read for every message
    we send) are applied together by ``statuses_apply`` and marked processed in one UPDATE. Those
    carrying customer messages are left to the per-event path (``one_by_one``), whose claim,
    contact, media and keyword handling is per message anyway. A malformed one is dead-lettered.
    A database failure raises: the task retries the whole batch (applying statuses is idempotent).
    """
    summary = BatchSummary()
    items: list[tuple[dict[str, Any], str]] = []
    batched: list[str] = []
    events = InboundEvent.objects.filter(pk__in=event_ids, status=InboundEvent.Status.PENDING).only("pk", "body")
    for event in events:
        event_id = str(event.pk)
        body = event.body
        message = sns_message(body)  # parsed once; what kind of event it is is told from it
        is_notification = isinstance(body, dict) and body.get("Type") == NOTIFICATION
        if (is_notification and feedback_record(message) is not None) or sms_voice_record(message) is not None:
            summary.one_by_one.append(event_id)  # SES / SMS feedback, voice and RCS events: the per-event path
            continue
        if is_notification and not is_eum_message(message):
            batched.append(event_id)  # not an EUM event: kept, nothing to process
            continue
        try:
            if not is_notification:
                raise InboundPayloadError("Not an SNS Notification.")
            statuses = _status_only(message)
        except InboundPayloadError as exc:
            logger.error("inbound event %s cannot be processed: %s", event_id, exc)
            inbound_event_fail(event_id=event_id, error=f"InboundPayloadError: {exc}")
            summary.failed.append(event_id)
            continue
        if statuses is None:
            summary.one_by_one.append(event_id)
            continue
        items.extend(statuses)
        batched.append(event_id)
    if batched:
        with transaction.atomic():
            summary.statuses_moved = statuses_apply(items)
            InboundEvent.objects.filter(pk__in=batched, status=InboundEvent.Status.PENDING).update(
                status=InboundEvent.Status.PROCESSED, processed_at=timezone.now(), error=""
            )
        summary.processed = batched
    logger.info(
        "inbound batch: %s event(s) processed together (%s status move(s)), %s one by one, %s dead-lettered",
        len(summary.processed),
        summary.statuses_moved,
        len(summary.one_by_one),
        len(summary.failed),
    )
    return summary
