"""Courtesies on inbound WhatsApp messages (messaging.inbound): a 👍 reaction, blue ticks."""

from __future__ import annotations

from datetime import datetime

from contacts.models import Channel
from messaging.channels import provider_for
from messaging.channels import whatsapp as whatsapp_channel
from messaging.models import Message
from messaging.outbound.request import SendRequest, send_request_build
from messaging.outbound.send import message_send
from messaging.ratelimit import rate_limit_acquire, whatsapp_send_buckets
from messaging.safety import READ_RECEIPT, safety_check


def whatsapp_react(*, message: Message, emoji: str, requested_by=None) -> Message:
    """React to an inbound WhatsApp message from the number it came to: a queued outbound message."""
    request = send_request_build(
        contact_id=message.contact_id,
        channel=Channel.WHATSAPP,
        text=emoji,
        reaction_to=message.whatsapp_message_id or "",
        origination_phone_number_id=message.origination_phone_number_id,
    )
    return message_send(request, requested_by=requested_by, audit=requested_by is not None)


def whatsapp_mark_as_read(*, message: Message, now: datetime | None = None) -> None:
    """Blue ticks for an inbound WhatsApp message, now (not stored as a message).

    Through the gate like any send (opt-in, allowlisted number, 24-hour window); rate-limited on the
    receiving number; in DRY_RUN the provider boundary logs the request and calls nothing. Raises
    SafetyRefusal, RateLimited or ChannelError.
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
    rate_limit_acquire(whatsapp_send_buckets(clearance.phone_number_id))
    provider_for(Channel.WHATSAPP).call(provider_request)
