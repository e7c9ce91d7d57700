"""Voice call and RCS events of AWS End User Messaging SMS, arriving on the verified SNS endpoint.

The configuration sets of the two channels (settings.VOICE_CONFIGURATION_SET, RCS_CONFIGURATION_SET)
have the platform's SNS topic as event destination; SNS delivers each event as the ``Message`` of a
Notification, a JSON object in the service's event format:

    {"eventType": "VOICE_ANSWERED", "eventVersion": "1.0", "eventTimestamp": 1729099299998,
     "isFinal": false, "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156",
     "messageId": "862a8790-…", "messageStatus": "ANSWERED", "messageStatusDescription": "…", …}

RCS events carry ``rcsBusinessId`` and ``agentIsoCountryCode`` besides, with eventType RCS_* and
messageStatus DELIVERED, READ, PENDING, EXPIRED, FAILED, …. ``messageId`` is SendVoiceMessage's or
SendRcsMessage's MessageId, kept as the message's provider_message_id: that is how an event finds its
message. Statuses move forward only (a late "ringing" after "completed" changes nothing).

Only VOICE_* and RCS_* events are handled here; SMS events (TEXT_*) are not this module's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import Channel
from messaging.inbound.payload import InboundPayloadError
from messaging.models import (
    VOICE_CALL_RANK,
    Direction,
    Message,
    MessageStatus,
    VoiceCall,
    VoiceCallStatus,
    status_may_advance,
)
from messaging.sns import sns_message
from wecare import metrics

logger = logging.getLogger(__name__)

VOICE_STATUSES = {
    "INITIATED": VoiceCallStatus.INITIATED,
    "RINGING": VoiceCallStatus.RINGING,
    "ANSWERED": VoiceCallStatus.ANSWERED,
    "COMPLETED": VoiceCallStatus.COMPLETED,
    "BUSY": VoiceCallStatus.BUSY,
    "NO_ANSWER": VoiceCallStatus.NO_ANSWER,
    "FAILED": VoiceCallStatus.FAILED,
    "TTL_EXPIRED": VoiceCallStatus.FAILED,
}
# What a call's status means for its message: answered is delivered; busy, no answer, failed end it.
VOICE_MESSAGE_STATUS = {
    VoiceCallStatus.ANSWERED: MessageStatus.DELIVERED,
    VoiceCallStatus.COMPLETED: MessageStatus.DELIVERED,
    VoiceCallStatus.BUSY: MessageStatus.FAILED,
    VoiceCallStatus.NO_ANSWER: MessageStatus.FAILED,
    VoiceCallStatus.FAILED: MessageStatus.FAILED,
}
RCS_STATUSES = {
    "DELIVERED": MessageStatus.DELIVERED,
    "READ": MessageStatus.READ,
    "FAILED": MessageStatus.FAILED,
    "EXPIRED": MessageStatus.FAILED,
    "TTL_EXPIRED": MessageStatus.FAILED,
    "UNDELIVERABLE": MessageStatus.FAILED,
    "INVALID": MessageStatus.FAILED,
    "BLOCKED": MessageStatus.FAILED,
}
TIME_FIELDS = {
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}


def sms_voice_event(body: dict[str, Any]) -> dict[str, Any] | None:
    """The voice or RCS event inside an SNS Notification body, or None if it carries something else."""
    return sms_voice_record(sns_message(body))


def sms_voice_record(event: Any) -> dict[str, Any] | None:
    """``event`` (a notification's parsed Message) if it is a voice or RCS event, else None."""
    if not isinstance(event, dict) or not isinstance(event.get("eventType"), str):
        return None
    return event if event["eventType"].startswith(("VOICE_", "RCS_")) else None


def _status_of(event: dict[str, Any]) -> str:
    """messageStatus, else the eventType without its VOICE_/RCS_ prefix."""
    status = event.get("messageStatus")
    if isinstance(status, str) and status:
        return status.upper()
    return event["eventType"].split("_", 1)[1].upper()


def _when(event: dict[str, Any]) -> datetime:
    stamp = event.get("eventTimestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp > 0:
        return datetime.fromtimestamp(stamp / 1000, tz=UTC)
    return timezone.now()


def _duration(event: dict[str, Any]) -> int | None:
    for key in ("callDurationInSeconds", "totalDurationRounded"):
        value = event.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return None


def _message_advance(message: Message, new: str, at: datetime, code: str, description: str) -> bool:
    """Move the message forward to ``new`` (conditional update, as WhatsApp statuses do)."""
    updates: dict[str, Any] = {"status": new, TIME_FIELDS[new]: at, "updated_at": timezone.now()}
    if new == MessageStatus.FAILED:
        updates["error_code"] = code[:64]
        updates["error_details"] = {"code": code, "message": description}
    may_advance_from = [current for current in MessageStatus.values if status_may_advance(current, new)]
    changed = Message.objects.filter(pk=message.pk, status__in=may_advance_from).update(**updates)
    if changed:
        metrics.message_status(new, channel=message.channel)
    return bool(changed)


def _voice_apply(message: Message, event: dict[str, Any], status: str) -> bool:
    call_status = VOICE_STATUSES.get(status)
    if call_status is None:
        logger.info("voice event %s of message %s ignored (not tracked)", status, message.pk)
        return False
    at, description = _when(event), str(event.get("messageStatusDescription") or "")[:256]
    with transaction.atomic():
        call = VoiceCall.objects.select_for_update().filter(message=message).first()
        if call is None:  # the send's record failed to be written: the event writes it
            call = VoiceCall.objects.create(
                message=message,
                contact_id=message.contact_id,
                origination=str(event.get("originationPhoneNumber") or ""),
                destination=str(event.get("destinationPhoneNumber") or "")[:20],
                body=message.content,
                voice=str((message.options or {}).get("voiceId") or ""),
                provider_message_id=message.provider_message_id,
            )
        moved = VOICE_CALL_RANK.get(call_status, -1) > VOICE_CALL_RANK.get(call.status, -1)
        if moved:
            call.status, call.status_description = call_status, description
            if call_status == VoiceCallStatus.ANSWERED:
                call.answered_at = at
            if VOICE_CALL_RANK[call_status] == VOICE_CALL_RANK[VoiceCallStatus.COMPLETED]:
                call.ended_at = at
        duration = _duration(event)
        if duration is not None:
            call.duration_seconds = duration
        call.save()
    if call_status in VOICE_MESSAGE_STATUS and moved:
        _message_advance(message, VOICE_MESSAGE_STATUS[call_status], at, f"VOICE_{status}", description)
    logger.info("voice event %s of message %s: %s", status, message.pk, "applied" if moved else "not newer")
    return moved


def _rcs_apply(message: Message, event: dict[str, Any], status: str) -> bool:
    if status == "FALLBACK" or "FALLBACK" in event["eventType"]:
        # We never ask for a fallback (messaging.channels.rcs): one happening is a configuration error.
        logger.error("RCS message %s reports a fallback to SMS/MMS, which is never requested", message.pk)
        return False
    new = RCS_STATUSES.get(status)
    if new is None:
        logger.info("RCS event %s of message %s ignored (not tracked)", status, message.pk)
        return False
    at = _when(event)
    changed = _message_advance(message, new, at, f"RCS_{status}", str(event.get("messageStatusDescription") or ""))
    if not changed and new == MessageStatus.READ:
        Message.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=at)
    if new == MessageStatus.READ:  # read implies delivered: keep when, if the delivered event never came
        Message.objects.filter(pk=message.pk, delivered_at__isnull=True).update(delivered_at=at)
    logger.info("RCS event %s of message %s: %s", status, message.pk, "applied" if changed else "not newer")
    return changed


def sms_voice_event_apply(event: dict[str, Any]) -> bool:
    """Apply one voice or RCS event to its message (and call). Returns whether anything moved."""
    provider_id = event.get("messageId")
    if not isinstance(provider_id, str) or not provider_id:
        raise InboundPayloadError("A voice/RCS event has no messageId.")
    channel = Channel.VOICE if event["eventType"].startswith("VOICE_") else Channel.RCS
    message = Message.objects.filter(
        provider_message_id=provider_id, direction=Direction.OUTBOUND, channel=channel
    ).first()
    status = _status_of(event)
    if message is None:
        logger.warning("%s event %s of %s matches no outbound message of ours", channel, status, provider_id)
        return False
    if channel == Channel.VOICE:
        return _voice_apply(message, event, status)
    return _rcs_apply(message, event, status)
