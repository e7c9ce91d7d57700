"""Replaying a dead-lettered outbound message (the outbound-dlq handler of messaging.dlq)."""

from __future__ import annotations

import logging

from messaging.models import Message, MessageStatus, MessageType
from messaging.outbound.request import OutgoingMedia, is_uuid, send_request_build
from messaging.outbound.send import message_send

logger = logging.getLogger(__name__)

MAX_REPLAYS = 3


def handle_outbound_dlq_payload(payload: dict) -> Message:
    """Replay one dead-lettered outbound message.

    The failed message stays failed (status only moves forward); its replay is a new message with
    ``replay_of`` pointing at the original, sent through message_send: the gate decides again
    (consent may have been withdrawn, the number removed from the allowlist). Raises on refusal,
    so the DLQ keeps the payload and eventually parks it for a human.
    """
    message_id = payload.get("messageId") if isinstance(payload, dict) else None
    original = Message.objects.filter(pk=message_id).first() if is_uuid(message_id) else None
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
    template_extras = (original.whatsapp_payload or {}).get("template") or {}
    request = send_request_build(
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
        template_header=template_extras.get("header", ""),
        template_buttons=template_extras.get("buttons") or None,
        options=original.options,  # the voice and text type of a call, an RCS message's suggestions
    )
    replay = message_send(request, requested_by=original.requested_by, audit=False, replay_of=root)
    logger.info("message %s replayed from the outbound DLQ as %s", original.pk, replay.pk)
    return replay
