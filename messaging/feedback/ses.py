"""SES event publishing (configuration set → SNS → /webhooks/sns/): bounce, complaint, delivery, reject
and delivery delay, in the format of "Contents of event data that Amazon SES publishes to Amazon SNS"
(docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html).

- Delivery: the message is delivered; the address's soft-bounce count starts again.
- Bounce, Permanent: the message failed and the address is suppressed (``hard_bounce``; subtype
  ``OnAccountSuppressionList`` — SES refused because the address is on the account's suppression
  list — as ``account_suppressed``).
- Bounce, Transient or Undetermined: the message failed; after EMAIL_SOFT_BOUNCE_LIMIT in a row the
  address is suppressed (``soft_bounces``).
- Complaint: the address is suppressed (``complaint``); the message was delivered.
- Reject: SES refused the message itself (e.g. a virus): failed, no suppression.
- DeliveryDelay: noted; SES keeps trying, so the message stays sent.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from contacts.models import Channel
from messaging.feedback.status import message_advance
from messaging.feedback.suppressions import suppression_add, suppression_address
from messaging.inbound.payload import InboundPayloadError
from messaging.models import Direction, EmailSoftBounce, Message, MessageStatus, SuppressionReason

logger = logging.getLogger(__name__)

MESSAGE_TAG = "wecare-message-id"  # set on every send (messaging.channels.email)
EVENT_TYPES = frozenset({"Bounce", "Complaint", "Delivery", "Send", "Reject", "Open", "Click", "Rendering Failure",
                         "DeliveryDelay", "Subscription"})  # fmt: skip


def is_ses_event(message: Any) -> bool:
    return (
        isinstance(message, dict) and message.get("eventType") in EVENT_TYPES and isinstance(message.get("mail"), dict)
    )


def _when(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed or timezone.now()


def _find_message(mail: dict[str, Any]) -> Message | None:
    outbound = Message.objects.filter(direction=Direction.OUTBOUND, channel=Channel.EMAIL)
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    for value in tags.get(MESSAGE_TAG) or []:
        try:
            message = outbound.filter(pk=uuid.UUID(str(value))).first()
        except ValueError:
            continue
        if message is not None:
            return message
    ses_id = mail.get("messageId")
    if isinstance(ses_id, str) and ses_id:
        return outbound.filter(provider_message_id=ses_id).first()
    return None


def _recipients(items: Any) -> list[tuple[str, dict[str, Any]]]:
    """(address, recipient object) of bouncedRecipients / complainedRecipients."""
    found = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("emailAddress"), str):
            address = parseaddr(item["emailAddress"])[1]
            if address:
                found.append((suppression_address(Channel.EMAIL, address), item))
    return found


def _soft_bounce(address: str, *, event_id: str, detail: str, at: datetime) -> int:
    """Count one soft bounce in a row (once per SES feedbackId); returns the count now."""
    with transaction.atomic():
        row, _ = EmailSoftBounce.objects.select_for_update().get_or_create(address=address)
        if event_id and row.last_event_id == event_id:
            return row.count
        EmailSoftBounce.objects.filter(pk=row.pk).update(
            count=F("count") + 1, last_at=at, last_detail=detail[:1000], last_event_id=event_id[:256]
        )
        row.refresh_from_db()
        return row.count


def _bounce(message: Message | None, bounce: dict[str, Any]) -> str:
    kind = str(bounce.get("bounceType", ""))
    subtype = str(bounce.get("bounceSubType", ""))
    at = _when(bounce.get("timestamp"))
    event_id = str(bounce.get("feedbackId", ""))
    recipients = _recipients(bounce.get("bouncedRecipients"))
    if message is not None:
        message_advance(
            message,
            MessageStatus.FAILED,
            at=at,
            error_code=f"Bounce.{kind}.{subtype}",
            error_details={
                "provider": "ses",
                "bounceType": kind,
                "bounceSubType": subtype,
                "status": [r.get("status", "") for _, r in recipients],
                "diagnosticCode": [r.get("diagnosticCode", "") for _, r in recipients],
                "feedbackId": event_id,
            },
        )
    contact = message.contact if message is not None else None
    for address, recipient in recipients:
        detail = f"{kind}/{subtype}: {recipient.get('status', '')} {recipient.get('diagnosticCode', '')}".strip()
        if kind == "Permanent":
            reason = (
                SuppressionReason.ACCOUNT_SUPPRESSED
                if subtype == "OnAccountSuppressionList"
                else SuppressionReason.HARD_BOUNCE
            )
            suppression_add(
                channel=Channel.EMAIL, address=address, reason=reason, detail=detail, contact=contact,
                provider_event_id=event_id, now=at,
            )  # fmt: skip
            continue
        count = _soft_bounce(address, event_id=event_id, detail=detail, at=at)
        if count >= settings.EMAIL_SOFT_BOUNCE_LIMIT:
            suppression_add(
                channel=Channel.EMAIL, address=address, reason=SuppressionReason.SOFT_BOUNCES,
                detail=f"{count} soft bounces in a row; last {detail}", contact=contact,
                provider_event_id=event_id, now=at,
            )  # fmt: skip
    return f"bounce {kind}"


def _complaint(message: Message | None, complaint: dict[str, Any]) -> str:
    at = _when(complaint.get("timestamp"))
    if message is not None:
        message_advance(message, MessageStatus.DELIVERED, at=at)  # a complaint means it arrived
    feedback_type = str(complaint.get("complaintFeedbackType", "") or "abuse")
    for address, _ in _recipients(complaint.get("complainedRecipients")):
        suppression_add(
            channel=Channel.EMAIL,
            address=address,
            reason=SuppressionReason.COMPLAINT,
            detail=f"complaint ({feedback_type})",
            contact=message.contact if message is not None else None,
            provider_event_id=str(complaint.get("feedbackId", "")),
            now=at,
        )
    return "complaint"


def _delivery(message: Message | None, mail: dict[str, Any], delivery: dict[str, Any]) -> str:
    if message is not None:
        message_advance(message, MessageStatus.DELIVERED, at=_when(delivery.get("timestamp")))
    recipients = [suppression_address(Channel.EMAIL, parseaddr(r)[1]) for r in delivery.get("recipients") or []]
    recipients = [r for r in recipients if r] or [
        suppression_address(Channel.EMAIL, parseaddr(d)[1]) for d in mail.get("destination") or [] if isinstance(d, str)
    ]
    # A delivery breaks the run of soft bounces.
    EmailSoftBounce.objects.filter(address__in=recipients, count__gt=0).update(count=0)
    return "delivery"


def ses_event_apply(event: dict[str, Any]) -> str:
    """Apply one SES event record (the SNS Message, parsed). Idempotent. Returns what it did, in words."""
    kind = event["eventType"]
    mail = event["mail"]
    message = _find_message(mail)
    if message is None:
        logger.warning("SES %s event for SES message %s matches no email of ours", kind, mail.get("messageId"))
    if kind == "Bounce":
        bounce = event.get("bounce")
        if not isinstance(bounce, dict):
            raise InboundPayloadError("A Bounce event has no bounce object.")
        return _bounce(message, bounce)
    if kind == "Complaint":
        complaint = event.get("complaint")
        if not isinstance(complaint, dict):
            raise InboundPayloadError("A Complaint event has no complaint object.")
        return _complaint(message, complaint)
    if kind == "Delivery":
        delivery = event.get("delivery") if isinstance(event.get("delivery"), dict) else {}
        return _delivery(message, mail, delivery)
    if kind == "Reject":
        reject = event.get("reject") if isinstance(event.get("reject"), dict) else {}
        if message is not None:
            message_advance(
                message,
                MessageStatus.FAILED,
                at=_when(mail.get("timestamp")),
                error_code="Reject",
                error_details={"provider": "ses", "reason": str(reject.get("reason", ""))},
            )
        return "reject"
    if kind == "DeliveryDelay":
        delay = event.get("deliveryDelay") if isinstance(event.get("deliveryDelay"), dict) else {}
        logger.info(
            "SES delivery delay (%s) of message %s until %s",
            delay.get("delayType"),
            message.pk if message else "-",
            delay.get("expirationTime"),
        )
        return "delivery delay"
    return f"{kind} ignored"
