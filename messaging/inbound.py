"""Inbound WhatsApp: what the platform does with a verified SNS notification from EUM Social.

Layers of one notification (aws-apis.md §2): the SNS body's ``Message`` is the EUM envelope
(``context`` + ``whatsAppWebhookEntry``, itself a JSON string holding one Meta ``entry``); each
``changes[].value`` carries ``messages[]`` (customers writing to us) and/or ``statuses[]`` (what
happened to our outbound messages).

- Messages are stored once per wamid: a DynamoDB claim (messaging.claims) serialises the copies
  SNS and Meta deliver, and the unique constraint on Message.whatsapp_message_id is the last word.
  The message row, a new contact, the 24-hour window (lastInboundMessageAt) and a keyword's consent
  change are written in one transaction; media is fetched after it, and a later copy or replay
  resumes a fetch that did not finish.
- Statuses move an outbound message forward only (``status_may_advance``), with conditional
  UPDATEs so concurrent or late events never move it back.

The Celery task (messaging.tasks.inbound) calls ``inbound_event_process``; the DLQ replay calls
``handle_dlq_payload`` — the same code.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import audit_record
from contacts.models import Channel, ConsentEvent, ConsentSource, Contact
from contacts.services import PHONE_TAKEN, contact_create, contact_set_opt_in
from messaging import claims
from messaging.dlq import dlq_send
from messaging.models import (
    Direction,
    InboundEvent,
    MediaFile,
    Message,
    MessageStatus,
    MessageType,
    status_may_advance,
)
from messaging.sns import NOTIFICATION
from wecare import aws

logger = logging.getLogger(__name__)

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
STATUS_TIME_FIELDS = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}
# socialmessaging errors that no retry will fix (the media id is unknown, expired or not ours).
PERMANENT_MEDIA_ERRORS = {
    "ValidationException",
    "InvalidParametersException",
    "ResourceNotFoundException",
    "AccessDeniedException",
    "AccessDeniedByMetaException",
}
# WhatsApp's media types → the extension of the stored object (the rest: mimetypes, else "bin").
EXTENSIONS = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}
_WA_ID = re.compile(r"^\+?[1-9][0-9]{6,14}$")


class InboundPayloadError(Exception):
    """The notification cannot be processed as it is: retrying will not help (it goes to the DLQ)."""


class MediaUnavailable(Exception):
    """The media could not be fetched for now (throttled, Meta slow): retry later."""


@dataclass
class ProcessSummary:
    # Not an EUM Social event (e.g. a tier alert published to the same topic): kept, not processed.
    not_eum: bool = False
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    statuses_applied: list[str] = field(default_factory=list)
    statuses_ignored: list[str] = field(default_factory=list)


@dataclass
class ParsedMessage:
    message_type: str
    content: str
    media: dict[str, Any] | None = None


# --- decoding --------------------------------------------------------------------------------------


def is_eum_event(body: dict[str, Any]) -> bool:
    """Whether a Notification carries an EUM Social event at all (a JSON object with its keys).

    Other publishers may share the topic (the tier alerts are plain text): those are not errors.
    """
    try:
        message = json.loads(body.get("Message", "")) if isinstance(body, dict) else None
    except (TypeError, ValueError):
        return False
    return isinstance(message, dict) and ("whatsAppWebhookEntry" in message or "context" in message)


def decode_notification(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(EUM envelope, Meta entry) of an SNS Notification body; InboundPayloadError if malformed."""
    if not isinstance(body, dict) or body.get("Type") != NOTIFICATION:
        raise InboundPayloadError("Not an SNS Notification.")
    try:
        envelope = json.loads(body["Message"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InboundPayloadError(f"The SNS Message is not a JSON EUM envelope: {exc}") from None
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


def extension_for(mime_type: str) -> str:
    base = mime_type.split(";")[0].strip().lower()
    if base in EXTENSIONS:
        return EXTENSIONS[base]
    guessed = mimetypes.guess_extension(base) or ""
    return guessed.lstrip(".") or "bin"


# --- contacts and the 24-hour window ---------------------------------------------------------------


def _sender_phone(message: dict[str, Any]) -> str:
    sender = _text(message.get("from"))
    if not _WA_ID.match(sender):
        # BSUID-only senders (usernames) have no phone number: a contact needs one.
        raise InboundPayloadError(f"The sender {sender or message.get('from_user_id')!r} is not a phone number.")
    return "+" + sender.lstrip("+")


def _contact_for_sender(*, phone: str, name: str, whatsapp_message_id: str) -> Contact:
    """The active contact with this phone; a new one (every opt-in False) if there is none."""
    contact = Contact.objects.active().filter(phone=phone).first()
    if contact is not None:
        return contact
    try:
        # source is what the contact's consent history would cite; with no opt-in given nothing is
        # written there. "api": the contact comes from a machine feed, not a person's action.
        contact = contact_create(name=name[:200], phone=phone, opt_ins=None, actor=None, source=ConsentSource.API)
    except ValidationError as exc:
        if PHONE_TAKEN in exc.message_dict.get("phone", []):
            # Another message from the same new sender created the contact at the same moment.
            contact = Contact.objects.active().filter(phone=phone).first()
            if contact is not None:
                return contact
        raise InboundPayloadError(f"Cannot create a contact for {phone}: {exc.messages}") from None
    audit_record(
        user=None,
        action="inbound.contact_create",
        resource_type="contact",
        resource_id=contact.pk,
        details={"whatsapp_message_id": whatsapp_message_id},
    )
    return contact


def contact_touch_inbound(*, contact: Contact, at: datetime) -> bool:
    """Move lastInboundMessageAt forward to ``at`` (never back): opens the 24-hour window."""
    return bool(
        Contact.objects.filter(pk=contact.pk)
        .filter(Q(last_inbound_message_at__isnull=True) | Q(last_inbound_message_at__lt=at))
        .update(last_inbound_message_at=at)
    )


def _keyword(parsed: ParsedMessage) -> str | None:
    if parsed.message_type not in (MessageType.TEXT, MessageType.BUTTON):
        return None
    word = parsed.content.strip().upper()
    if word in settings.INBOUND_OPT_OUT_KEYWORDS:
        return "opt_out"
    if word in settings.INBOUND_OPT_IN_KEYWORDS:
        return "opt_in"
    return None


def _apply_keyword(*, message: Message, contact: Contact, action: str, sent_at: datetime) -> None:
    """Turn WhatsApp consent off (opt_out) or on (opt_in) and leave a trace operators can see.

    An opt-out always counts, however late it arrives. An opt-in keyword does not override a newer
    decision: a STOP the customer sent at the same time or later (by Meta's timestamps, whatever
    order they reach us in), or an opt-out someone recorded here after the customer sent it.
    """
    value = action == "opt_in"
    superseded = value and (
        Message.objects.filter(
            contact=contact, direction=Direction.INBOUND, keyword_action="opt_out", created_at__gte=sent_at
        ).exists()
        or ConsentEvent.objects.filter(
            contact=contact, channel=Channel.WHATSAPP, new_value=False, changed_at__gt=sent_at
        )
        .exclude(source=ConsentSource.INBOUND_KEYWORD)
        .exists()
    )
    changed = False
    if not superseded:
        changed = contact_set_opt_in(
            contact=contact, channel=Channel.WHATSAPP, value=value, actor=None, source=ConsentSource.INBOUND_KEYWORD
        )
    audit_record(
        user=None,
        action="inbound.keyword",
        resource_type="message",
        resource_id=message.pk,
        details={
            "keyword": message.content.strip().upper(),
            "action": action,
            "contact": str(contact.pk),
            "changed": changed,
            "superseded": superseded,
        },
    )
    logger.info("inbound keyword %s from contact %s: changed=%s superseded=%s", action, contact.pk, changed, superseded)


# --- messages ----------------------------------------------------------------------------------------


class _AlreadyStored(Exception):
    pass


def _message_store(
    *, raw: dict[str, Any], receiving: str, sender_name: str, whatsapp_message_id: str
) -> tuple[Message, bool]:
    """Store one inbound message and everything that must happen with it, atomically.

    Returns (message, created). A message already stored (by an earlier copy) is returned as is.
    """
    parsed = parse_message(raw)
    sent_at = _timestamp(raw.get("timestamp"))
    phone = _sender_phone(raw)
    try:
        with transaction.atomic():
            if Message.objects.filter(whatsapp_message_id=whatsapp_message_id).exists():
                raise _AlreadyStored
            contact = _contact_for_sender(phone=phone, name=sender_name, whatsapp_message_id=whatsapp_message_id)
            action = _keyword(parsed)
            message = Message(
                contact=contact,
                channel=Channel.WHATSAPP,
                direction=Direction.INBOUND,
                message_type=parsed.message_type,
                content=parsed.content,
                status=MessageStatus.RECEIVED,
                whatsapp_message_id=whatsapp_message_id,
                origination_phone_number_id=receiving,
                sender_name=sender_name[:256],
                whatsapp_payload=raw,
                keyword_action=action or "",
                # When the customer sent it (Meta's timestamp), so a conversation reads in order.
                created_at=sent_at,
            )
            message.save(force_insert=True)
            if parsed.media is not None:
                MediaFile.objects.create(
                    message=message,
                    s3_key="",  # set when the file is in the bucket (media_fetch)
                    content_type=_text(parsed.media.get("mime_type")),
                    filename=_text(parsed.media.get("filename"))[:255],
                    whatsapp_media_id=_text(parsed.media.get("id")),
                )
            contact_touch_inbound(contact=contact, at=sent_at)
            if action:
                _apply_keyword(message=message, contact=contact, action=action, sent_at=sent_at)
            return message, True
    except _AlreadyStored:
        pass
    except IntegrityError as exc:
        if "message_whatsapp_id_unique" not in str(exc):
            raise
        logger.info("inbound %s: stored by another worker at the same moment", whatsapp_message_id)
    return Message.objects.get(whatsapp_message_id=whatsapp_message_id), False


def media_fetch(media: MediaFile) -> MediaFile:
    """Copy an inbound file from WhatsApp into the media bucket, at {prefix}{messageId}.{ext}.

    GetWhatsAppMessageMedia treats the S3 key as a prefix and appends the media id (and an
    extension) itself (aws-apis.md §1.4), so the exact name cannot be asked for. The file goes to
    a staging prefix of its own, ``{prefix}staging/{messageId}/``; whatever object appears there is
    copied to the final key and the staging object deleted. Idempotent: a file already in place is
    left alone, and a staging object left by a crash is picked up by the next attempt.
    """
    if media.s3_key and media.size is not None:
        return media
    message = media.message
    bucket = settings.MEDIA_BUCKET
    prefix = settings.MEDIA_INCOMING_PREFIX
    staging = f"{prefix}staging/{message.pk}/"
    s3 = aws.client("s3")
    staged = _staged_objects(s3, bucket, staging)
    mime_type = media.content_type
    if not staged:
        try:
            result = aws.client("socialmessaging").get_whatsapp_message_media(
                mediaId=media.whatsapp_media_id,
                originationPhoneNumberId=message.origination_phone_number_id,
                destinationS3File={"bucketName": bucket, "key": staging},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in PERMANENT_MEDIA_ERRORS:
                raise InboundPayloadError(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {code}: {exc}") from exc
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {code}") from exc
        except BotoCoreError as exc:
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {exc}") from exc
        mime_type = result.get("mimeType") or mime_type
        staged = _staged_objects(s3, bucket, staging)
        if not staged:
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id} left nothing under {staging}")
    source = _pick_staged(staged, media.whatsapp_media_id)
    mime_type = (mime_type or "application/octet-stream").split(";")[0].strip()
    final_key = f"{prefix}{message.pk}.{extension_for(mime_type)}"
    s3.copy_object(
        Bucket=bucket,
        Key=final_key,
        CopySource={"Bucket": bucket, "Key": source},
        ContentType=mime_type,
        MetadataDirective="REPLACE",
        Metadata={"whatsapp-media-id": media.whatsapp_media_id, "message-id": str(message.pk)},
    )
    size = s3.head_object(Bucket=bucket, Key=final_key)["ContentLength"]
    for key in staged:
        s3.delete_object(Bucket=bucket, Key=key)
    media.s3_key = final_key
    media.content_type = mime_type
    media.size = size
    media.uploaded_at = timezone.now()
    media.save(update_fields=["s3_key", "content_type", "size", "uploaded_at"])
    logger.info(
        "inbound media %s of message %s stored at %s (%s bytes)", media.whatsapp_media_id, message.pk, final_key, size
    )
    return media


def _staged_objects(s3, bucket: str, staging: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=staging)
    return [obj["Key"] for obj in listing.get("Contents", [])]


def _pick_staged(keys: list[str], media_id: str) -> str:
    named = [key for key in keys if media_id in key.rsplit("/", 1)[-1]]
    return sorted(named or keys)[0]


def _courtesy(message: Message) -> None:
    """Mark as read / react with a thumbs-up, when configured; through the outbound safety gate.

    Best effort and at most once (only right after the message was first stored): a failure is
    logged, never retried, and never stops the processing of the message itself.
    """
    if not (settings.INBOUND_MARK_AS_READ or settings.INBOUND_REACT_THUMBS_UP):
        return
    from messaging import services  # the outbound service imports much of the app; load it only when used

    for enabled, action in (
        (settings.INBOUND_MARK_AS_READ, "mark_as_read"),
        (settings.INBOUND_REACT_THUMBS_UP, "react"),
    ):
        if not enabled:
            continue
        try:
            if action == "mark_as_read":
                services.whatsapp_mark_as_read(message=message)
            else:
                services.whatsapp_react(message=message, emoji="\U0001f44d")
        except Exception as exc:  # best effort: the inbound message is stored whatever happens here
            logger.warning("inbound %s: %s did not go out: %s", message.whatsapp_message_id, action, exc)


def inbound_message_receive(*, raw: dict[str, Any], receiving: str, sender_name: str) -> tuple[Message | None, bool]:
    """Store one inbound message exactly once (claim + unique constraint) and fetch its media.

    Returns (message, created); (None, False) when an earlier copy already finished. Raises
    ClaimBusy when another worker is processing a copy right now (retry later).
    """
    whatsapp_message_id = _text(raw.get("id"))
    if not whatsapp_message_id:
        raise InboundPayloadError("An inbound message has no id.")
    claim = claims.claim_take(whatsapp_message_id, lease_seconds=settings.INBOUND_CLAIM_LEASE_SECONDS)
    if claim is None:
        return None, False
    try:
        message, created = _message_store(
            raw=raw, receiving=receiving, sender_name=sender_name, whatsapp_message_id=whatsapp_message_id
        )
        for media in message.media.filter(Q(size__isnull=True) | Q(s3_key="")):
            media_fetch(media)
    except BaseException:
        claims.claim_release(claim)
        raise
    claims.claim_done(claim)
    if created:
        _courtesy(message)
    return message, created


# --- statuses ------------------------------------------------------------------------------------------


def _outbound(queryset):
    return queryset.filter(direction=Direction.OUTBOUND, channel=Channel.WHATSAPP)


def _find_outbound(*, wamid: str, callback_data: str, envelope_message_id: str) -> Message | None:
    message = _outbound(Message.objects.filter(whatsapp_message_id=wamid)).first()
    if message is not None:
        return message
    if callback_data:
        try:
            message = _outbound(Message.objects.filter(pk=uuid.UUID(callback_data))).first()
        except ValueError:
            message = None
        if message is not None:
            if message.whatsapp_message_id and message.whatsapp_message_id != wamid:
                logger.warning(
                    "status %s: callback data points at %s which has wamid %s",
                    wamid,
                    message.pk,
                    message.whatsapp_message_id,
                )
                return None
            return message
    # SendWhatsAppMessage's messageId, kept as provider_message_id: EUM may echo it (aws-apis.md §1.2).
    for provider_id in (envelope_message_id, wamid):
        if provider_id:
            message = _outbound(Message.objects.filter(provider_message_id=provider_id)).first()
            if message is not None:
                return message
    return None


def _error_details(status: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
    if not errors:
        return "", {}
    first = errors[0]
    details = {
        "code": first.get("code"),
        "title": first.get("title", ""),
        "message": first.get("message", ""),
        "details": (first.get("error_data") or {}).get("details", "")
        if isinstance(first.get("error_data"), dict)
        else "",
        "href": first.get("href", ""),
        "errors": errors,
    }
    return str(first.get("code", "")), details


def status_apply(*, status: dict[str, Any], envelope_message_id: str = "") -> bool:
    """Apply one status event to our outbound message; forward only. Returns whether it changed."""
    wamid = _text(status.get("id"))
    new = _text(status.get("status"))
    if not wamid:
        raise InboundPayloadError("A status event has no message id.")
    if new not in STATUS_TIME_FIELDS:
        logger.info("status %s of %s ignored (not tracked)", new, wamid)
        return False
    at = _timestamp(status.get("timestamp"))
    message = _find_outbound(
        wamid=wamid,
        callback_data=_text(status.get("biz_opaque_callback_data")),
        envelope_message_id=envelope_message_id,
    )
    if message is None:
        logger.warning("status %s of %s matches no outbound message of ours", new, wamid)
        return False
    if message.whatsapp_message_id is None:
        try:
            with transaction.atomic():
                Message.objects.filter(pk=message.pk, whatsapp_message_id__isnull=True).update(
                    whatsapp_message_id=wamid
                )
        except IntegrityError:
            logger.warning("status %s: wamid already belongs to another message than %s", wamid, message.pk)
    time_field = STATUS_TIME_FIELDS[new]
    updates: dict[str, Any] = {"status": new, time_field: at, "updated_at": timezone.now()}
    if new == MessageStatus.FAILED:
        updates["error_code"], updates["error_details"] = _error_details(status)
    may_advance_from = [current for current in MessageStatus.values if status_may_advance(current, new)]
    # Conditional: the row moves only if its status (read now, in the database) may advance to `new`.
    changed = Message.objects.filter(pk=message.pk, status__in=may_advance_from).update(**updates)
    if not changed and new != MessageStatus.FAILED:
        # A late event (delivered after read) still tells when that step happened.
        Message.objects.filter(pk=message.pk, **{f"{time_field}__isnull": True}).update(**{time_field: at})
    logger.info("status %s of message %s (%s): %s", new, message.pk, wamid, "applied" if changed else "not newer")
    return bool(changed)


# --- notifications and events ------------------------------------------------------------------------


def notification_process(body: dict[str, Any]) -> ProcessSummary:
    """Process one SNS Notification body (already verified). Idempotent: safe to run again."""
    if isinstance(body, dict) and body.get("Type") == NOTIFICATION and not is_eum_event(body):
        logger.info(
            "SNS message %s on the topic is not an EUM Social event (subject %r): kept, nothing to process",
            body.get("MessageId"),
            body.get("Subject", ""),
        )
        return ProcessSummary(not_eum=True)
    envelope, entry = decode_notification(body)
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
                names[_text(profile.get("wa_id"))] = _text((profile.get("profile") or {}).get("name"))
        for raw in value.get("messages") or []:
            if not isinstance(raw, dict):
                raise InboundPayloadError("A message is not a JSON object.")
            message, created = inbound_message_receive(
                raw=raw, receiving=receiving, sender_name=names.get(_text(raw.get("from")), "")
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


def inbound_event_receive(*, sns_message_id: str, topic_arn: str, body: dict[str, Any]) -> tuple[InboundEvent, bool]:
    """Store a verified notification (once per SNS MessageId) and queue its processing.

    Returns (event, queued). A redelivery of an event still pending is queued again (the first
    enqueue may have been lost); one already processed or dead-lettered is not.
    """
    # The task module imports this one: import it here to avoid the cycle.
    from messaging.tasks.inbound import inbound_event_process_task

    event = _event_insert_once(sns_message_id=sns_message_id, topic_arn=topic_arn, body=body)
    created = event is not None
    if event is None:
        event = InboundEvent.objects.get(sns_message_id=sns_message_id)
    if not created and event.status != InboundEvent.Status.PENDING:
        logger.info("SNS message %s again: event %s is %s", sns_message_id, event.pk, event.status)
        return event, False
    event_id = str(event.pk)
    transaction.on_commit(lambda: inbound_event_process_task.delay(event_id))
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
    logger.info(
        "inbound event %s processed: stored=%s duplicates=%s statuses=%s",
        event.pk,
        summary.stored,
        summary.duplicates,
        summary.statuses_applied,
    )
    return summary


def inbound_event_fail(*, event_id, error: str) -> None:
    """Processing gave up: mark the event failed and dead-letter it (inbound-dlq) for replay."""
    event = InboundEvent.objects.get(pk=event_id)
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, error=error[:10000])
    dlq_send(
        queue=settings.QUEUE_INBOUND_DLQ,
        original_message_id=event.sns_message_id,
        payload=event.body,
        error=error,
    )


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
