"""Inbound messages, stored exactly once, with their contact, the 24-hour window and keywords.

A DynamoDB claim (messaging.claims) serialises the copies SNS and Meta deliver of one wamid, and the
unique constraint on Message.whatsapp_message_id is the last word. The message row, a new contact,
the contact's lastInboundMessageAt and a keyword's consent change are written in one transaction;
media is fetched after it, and a later copy or replay resumes a fetch that did not finish.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.services import audit_record
from automation.services import ai_on_inbound
from contacts.models import Channel, ConsentEvent, ConsentSource, Contact
from contacts.services import contact_create, contact_set_opt_in
from messaging import claims
from messaging.inbound.media import media_fetch
from messaging.inbound.payload import InboundPayloadError, ParsedMessage, _text, _timestamp, parse_message
from messaging.models import Direction, MediaFile, Message, MessageStatus, MessageType

logger = logging.getLogger(__name__)

_WA_ID = re.compile(r"^\+?[1-9][0-9]{6,14}$")


def _sender(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """(E.164 phone, business-scoped user id) of the sender; at least one of them.

    A user who hides their number (WhatsApp usernames) writes with ``from_user_id`` ("US.2685…")
    and no ``from``: such a sender is kept as a contact known by that id, not dead-lettered.
    """
    sender = _text(message.get("from"))
    user_id = _text(message.get("from_user_id")).strip()[:64] or None
    if sender and _WA_ID.match(sender):
        return "+" + sender.lstrip("+"), user_id
    if user_id:
        return None, user_id
    raise InboundPayloadError(f"The sender {sender!r} is neither a phone number nor a WhatsApp user id.")


def _contact_for_sender(*, phone: str | None, user_id: str | None, name: str, whatsapp_message_id: str) -> Contact:
    """The active contact with this phone (or, with no phone, this user id); a new one (every
    opt-in False, consent source ``inbound``) if there is none."""
    found = (
        Contact.objects.active().filter(phone=phone)
        if phone
        else Contact.objects.active().filter(whatsapp_user_id=user_id)
    )
    contact = found.first()
    if contact is not None:
        if phone and user_id and not contact.whatsapp_user_id:
            Contact.objects.filter(pk=contact.pk, whatsapp_user_id__isnull=True).update(whatsapp_user_id=user_id)
        return contact
    try:
        # No opt-in is given, so nothing is written to the consent history; the source says where
        # the contact came from, should one be recorded: a customer's own inbound message.
        with transaction.atomic():
            contact = contact_create(
                name=name[:200],
                phone=phone,
                whatsapp_user_id=user_id,
                opt_ins=None,
                actor=None,
                source=ConsentSource.INBOUND,
            )
    except (ValidationError, IntegrityError) as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
        # Another message from the same new sender created the contact at the same moment.
        contact = found.first()
        if contact is not None:
            return contact
        raise InboundPayloadError(f"Cannot create a contact for {phone or user_id}: {messages}") from None
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
    phone, user_id = _sender(raw)
    try:
        with transaction.atomic():
            if Message.objects.filter(whatsapp_message_id=whatsapp_message_id).exists():
                raise _AlreadyStored
            contact = _contact_for_sender(
                phone=phone, user_id=user_id, name=sender_name, whatsapp_message_id=whatsapp_message_id
            )
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
            ai_on_inbound(message)  # queues an AI suggestion after commit; never waits, never fails this
            return message, True
    except _AlreadyStored:
        pass
    except IntegrityError as exc:
        if "message_whatsapp_id_unique" not in str(exc):
            raise
        logger.info("inbound %s: stored by another worker at the same moment", whatsapp_message_id)
    return Message.objects.get(whatsapp_message_id=whatsapp_message_id), False


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
