"""Decoding what EUM Social publishes: the SNS body → the EUM envelope → Meta's entry → messages.

Layers (aws-apis.md §2): the SNS body's ``Message`` is the EUM envelope (``context`` +
``whatsAppWebhookEntry``, a JSON string holding one Meta ``entry``); each ``changes[].value`` carries
``messages[]`` (customers writing to us) and/or ``statuses[]`` (what happened to our messages).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from messaging.models import MessageType
from messaging.sns import NOTIFICATION, sns_message

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


class InboundPayloadError(Exception):
    """The notification cannot be processed as it is: retrying will not help (it goes to the DLQ)."""


@dataclass
class ParsedMessage:
    message_type: str
    content: str
    media: dict[str, Any] | None = None


def is_eum_event(body: dict[str, Any]) -> bool:
    """Whether a Notification carries an EUM Social event at all (a JSON object with its keys).

    Other publishers may share the topic (the tier alerts are plain text): those are not errors.
    """
    return is_eum_message(sns_message(body))


def is_eum_message(message: Any) -> bool:
    """Whether a notification's parsed Message is an EUM Social event (a JSON object with its keys)."""
    return isinstance(message, dict) and ("whatsAppWebhookEntry" in message or "context" in message)


def decode_notification(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(EUM envelope, Meta entry) of an SNS Notification body; InboundPayloadError if malformed."""
    if not isinstance(body, dict) or body.get("Type") != NOTIFICATION:
        raise InboundPayloadError("Not an SNS Notification.")
    try:
        envelope = json.loads(body["Message"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InboundPayloadError(f"The SNS Message is not a JSON EUM envelope: {exc}") from None
    return decode_envelope(envelope)


def decode_envelope(envelope: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(EUM envelope, Meta entry) of a notification's parsed Message; InboundPayloadError if malformed."""
    if not isinstance(envelope, dict):
        raise InboundPayloadError("The EUM envelope is not a JSON object.")
    raw_entry = envelope.get("whatsAppWebhookEntry")
    try:
        entry = json.loads(raw_entry) if isinstance(raw_entry, str) else raw_entry
    except ValueError as exc:
        raise InboundPayloadError(f"whatsAppWebhookEntry is not JSON: {exc}") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
        raise InboundPayloadError("whatsAppWebhookEntry has no changes[].")
    if not isinstance(envelope.get("context"), dict):
        raise InboundPayloadError("The EUM envelope has no context.")
    return envelope, entry


def phone_number_id_from_arn(arn: str) -> str:
    """arn:aws:social-messaging:…:phone-number-id/abc → phone-number-id-abc (aws-apis.md §1.1)."""
    tail = arn.split(":")[-1]
    if not tail.startswith("phone-number-id/") or len(tail) == len("phone-number-id/"):
        raise InboundPayloadError(f"{arn!r} is not a phone-number-id ARN.")
    return tail.replace("/", "-", 1)


def receiving_phone_number_id(context: dict[str, Any], meta_phone_number_id: str | None) -> str:
    """The AWS phone-number id of the number the event is about, from the envelope's context."""
    numbers = context.get("MetaPhoneNumberIds") or []
    if not isinstance(numbers, list) or not numbers:
        raise InboundPayloadError("context.MetaPhoneNumberIds is empty.")
    for number in numbers:
        if isinstance(number, dict) and str(number.get("metaPhoneNumberId")) == str(meta_phone_number_id):
            return phone_number_id_from_arn(str(number.get("arn", "")))
    if len(numbers) == 1 and isinstance(numbers[0], dict):
        # EUM sends one number per event; AWS's own samples do not always match the Meta id.
        return phone_number_id_from_arn(str(numbers[0].get("arn", "")))
    raise InboundPayloadError(f"No context.MetaPhoneNumberIds entry for Meta phone number {meta_phone_number_id}.")


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InboundPayloadError(f"{value!r} is not an epoch timestamp.") from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_message(message: dict[str, Any]) -> ParsedMessage:
    """Type, readable content and media reference of one Meta inbound message object."""
    kind = _text(message.get("type"))
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        return ParsedMessage(MessageType.TEXT, _text(body.get("body")))
    if kind in MEDIA_TYPES:
        if not _text(body.get("id")):
            raise InboundPayloadError(f"The {kind} message has no media id.")
        content = _text(body.get("caption")) or _text(body.get("filename"))
        return ParsedMessage(MessageType(kind), content, media=body)
    if kind == "location":
        place = ", ".join(p for p in (_text(body.get("name")), _text(body.get("address"))) if p)
        coords = f"({body.get('latitude')}, {body.get('longitude')})"
        return ParsedMessage(MessageType.LOCATION, f"{place} {coords}".strip())
    if kind == "contacts":
        cards = message.get("contacts") if isinstance(message.get("contacts"), list) else []
        names = []
        for card in cards:
            name = _text((card.get("name") or {}).get("formatted_name")) if isinstance(card, dict) else ""
            phones = [_text(p.get("phone")) for p in card.get("phones", []) if isinstance(p, dict)] if name else []
            names.append(f"{name} ({', '.join(p for p in phones if p)})" if phones else name)
        return ParsedMessage(MessageType.CONTACTS, "; ".join(n for n in names if n))
    if kind == "reaction":
        return ParsedMessage(MessageType.REACTION, _text(body.get("emoji")))
    if kind == "interactive":
        reply_type = _text(body.get("type"))
        reply = body.get(reply_type) if isinstance(body.get(reply_type), dict) else {}
        if reply_type == "nfm_reply":  # a WhatsApp Flow's answer
            return ParsedMessage(MessageType.INTERACTIVE, _text(reply.get("response_json")) or _text(reply.get("body")))
        return ParsedMessage(MessageType.INTERACTIVE, _text(reply.get("title")))
    if kind == "button":
        return ParsedMessage(MessageType.BUTTON, _text(body.get("text")) or _text(body.get("payload")))
    # order, system, unsupported, request_welcome…: stored with the raw payload for a human.
    return ParsedMessage(MessageType.UNKNOWN, "")
