"""EUM SMS feedback through SNS: delivery receipts (configuration set event destination) and two-way
SMS (inbound messages, e.g. STOP).

Formats: "Example event data" of AWS End User Messaging SMS
(docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-format.html; event types in
configuration-sets-event-types.html) and "Example of a two-way SMS message payload for Amazon SNS
topics" (docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.services import audit_record
from contacts.models import Channel, ConsentSource, Contact
from contacts.services import contact_set_opt_in
from messaging.feedback.status import message_advance
from messaging.feedback.suppressions import suppression_add
from messaging.models import Direction, Message, MessageStatus, MessageType, SuppressionReason

logger = logging.getLogger(__name__)

DELIVERED_EVENTS = frozenset({"TEXT_DELIVERED"})
# "Depending on the destination country TEXT_DELIVERED and TEXT_SUCCESSFUL may be used
# interchangeably": a final SUCCESSFUL is as delivered as we will ever learn.
SUCCESSFUL_EVENTS = frozenset({"TEXT_SUCCESSFUL"})
FAILED_EVENTS = frozenset(
    {
        "TEXT_BLOCKED",
        "TEXT_TTL_EXPIRED",
        "TEXT_CARRIER_UNREACHABLE",
        "TEXT_INVALID",
        "TEXT_INVALID_MESSAGE",
        "TEXT_CARRIER_BLOCKED",
        "TEXT_UNREACHABLE",
        "TEXT_SPAM",
        "TEXT_UNKNOWN",
        "TEXT_PROTECT_BLOCKED",
    }
)
# The number itself is the problem (not the text, not a passing network fault): stop sending to it.
SUPPRESSING_EVENTS = {
    "TEXT_INVALID": SuppressionReason.SMS_INVALID,  # the destination number is not valid
    "TEXT_BLOCKED": SuppressionReason.SMS_BLOCKED,  # the recipient's device or carrier blocks our messages
}


def is_sms_event(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("eventType"), str)
        and message["eventType"].startswith("TEXT_")
        and isinstance(message.get("messageId"), str)
    )


def is_sms_inbound(message: Any) -> bool:
    return isinstance(message, dict) and all(
        isinstance(message.get(key), str) for key in ("originationNumber", "destinationNumber", "inboundMessageId")
    )


def _epoch_ms(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def sms_event_apply(event: dict[str, Any]) -> str:
    """Apply one SMS event record: delivered, or failed with the carrier's reason (and maybe suppress)."""
    kind = event["eventType"]
    final = event.get("isFinal") is not False
    message = Message.objects.filter(
        direction=Direction.OUTBOUND, channel=Channel.SMS, provider_message_id=event["messageId"]
    ).first()
    if message is None:
        logger.warning("SMS %s event for %s matches no SMS of ours", kind, event["messageId"])
    at = _epoch_ms(event.get("eventTimestamp"))
    if kind in DELIVERED_EVENTS or (kind in SUCCESSFUL_EVENTS and final):
        if message is not None:
            message_advance(message, MessageStatus.DELIVERED, at=at)
        return "delivered"
    if kind not in FAILED_EVENTS or not final:
        return f"{kind} noted"
    description = str(event.get("messageStatusDescription", ""))
    if message is not None:
        message_advance(
            message,
            MessageStatus.FAILED,
            at=at,
            error_code=kind,
            error_details={
                "provider": "sms-voice",
                "messageStatus": str(event.get("messageStatus", "")),
                "message": description,
                "carrierName": str(event.get("carrierName", "")),
                "isoCountryCode": str(event.get("isoCountryCode", "")),
            },
        )
    reason = SUPPRESSING_EVENTS.get(kind)
    number = str(event.get("destinationPhoneNumber", "")) or (message.contact.phone if message else "")
    if reason and number:
        suppression_add(
            channel=Channel.SMS,
            address=number,
            reason=reason,
            detail=f"{kind}: {description}",
            contact=message.contact if message else None,
            provider_event_id=event["messageId"],
            now=at,
        )
    return f"failed {kind}"


def sms_inbound_apply(payload: dict[str, Any]) -> str:
    """An SMS a customer sent to our number: stored on their contact; an opt-out keyword (STOP) withdraws
    the contact's SMS consent (source ``inbound_keyword``) as it does on WhatsApp. Unknown senders are
    not made into contacts: there is no consent of theirs to withdraw."""
    sender = payload["originationNumber"]
    inbound_id = payload["inboundMessageId"][:256]
    body = str(payload.get("messageBody", ""))
    contact = Contact.objects.active().filter(phone=sender).first()
    if contact is None:
        logger.info("inbound SMS %s from a number no contact has: not stored", inbound_id)
        return "unknown sender"
    keyword = body.strip().upper()
    opt_out = keyword in settings.INBOUND_OPT_OUT_KEYWORDS
    with transaction.atomic():
        exists = Message.objects.filter(
            direction=Direction.INBOUND, channel=Channel.SMS, provider_message_id=inbound_id
        ).exists()
        if exists:
            return "already received"
        message = Message.objects.create(
            contact=contact,
            channel=Channel.SMS,
            direction=Direction.INBOUND,
            message_type=MessageType.TEXT,
            content=body[:1600],
            status=MessageStatus.RECEIVED,
            provider_message_id=inbound_id,
            keyword_action="opt_out" if opt_out else "",
        )
        if not opt_out:
            return "stored"
        changed = contact_set_opt_in(
            contact=contact, channel=Channel.SMS, value=False, actor=None, source=ConsentSource.INBOUND_KEYWORD
        )
        audit_record(
            user=None,
            action="inbound.keyword",
            resource_type="message",
            resource_id=message.pk,
            details={"keyword": keyword, "action": "opt_out", "channel": Channel.SMS, "contact": str(contact.pk),
                     "changed": changed},
        )  # fmt: skip
    logger.info("inbound SMS opt-out from contact %s: changed=%s", contact.pk, changed)
    return "opt-out"
