"""message_send: judge the one SendRequest, store the message (queued), hand it to the outbound queue."""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_entry, audit_logged
from contacts.models import Channel
from messaging.channels import email as email_channel
from messaging.models import Direction, MediaFile, Message, MessageStatus
from messaging.outbound.links import links_personalise
from messaging.outbound.media import media_upload, safe_filename
from messaging.outbound.request import SendRequest
from messaging.outbound.statements import rows_insert
from messaging.safety import safety_check

logger = logging.getLogger(__name__)


def _enqueue(message_id) -> None:
    # Imported here: the task module imports the outbound services.
    from messaging.tasks.outbound import deliver_message

    deliver_message.apply_async(args=[str(message_id)])


def whatsapp_payload(request: SendRequest) -> dict:
    """What a stored WhatsApp message keeps besides its columns: the wamid a reaction is about, a
    template's header text and button parameters (read back by SendRequest.from_message)."""
    payload: dict = {}
    if request.target_whatsapp_message_id:
        payload["reaction_to"] = request.target_whatsapp_message_id
    extras = {"header": request.template_header} if request.template_header else {}
    if request.template_buttons:
        extras["buttons"] = {str(key): value for key, value in request.template_buttons.items()}
    if extras:
        payload["template"] = extras
    return payload


def message_send(
    request: SendRequest,
    *,
    requested_by=None,
    enqueue: bool = True,
    audit: bool = True,
    now: datetime | None = None,
    replay_of: Message | None = None,
    bulk_job_id=None,
) -> Message:
    """Judge ``request`` (the gate), upload its media, store the Message (queued) and, on commit,
    enqueue its delivery. ``enqueue=False`` leaves delivery to the caller (bulk); ``audit=False``
    skips the per-message audit entry (bulk audits the job). Raises SafetyRefusal (422) or
    StorageUnavailable (503, the media bucket). Our short links in the body become the recipient's
    personal links (of ``bulk_job_id`` when it is a bulk job's message)."""
    now = now or timezone.now()
    clearance = safety_check(request, now=now)
    request = clearance.request or request  # as judged: rendered for the contact if personalised
    media = request.media
    if media is not None and not media.s3_key:
        if media.data is None:
            raise ValueError("OutgoingMedia needs data or an s3_key")
        media = media_upload(data=media.data, content_type=media.content_type, filename=media.filename, size=media.size)

    message = Message(
        id=uuid.uuid4(),
        contact=clearance.contact,
        channel=request.channel,
        direction=Direction.OUTBOUND,
        message_type=request.message_type,
        content=clearance.content,
        template_name=request.template_name,
        template_language=request.template_language,
        template_parameters=request.template_parameters or [],
        subject=request.subject,
        html=clearance.html,
        status=MessageStatus.QUEUED,
        origination_phone_number_id=clearance.phone_number_id,
        sender_name=email_channel.sender() if request.channel == Channel.EMAIL else "",
        segments=clearance.segments,
        whatsapp_payload=whatsapp_payload(request),
        options=clearance.options,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        replay_of=replay_of,
        email_confirmation_id=request.confirms_email_request,
        created_at=now,
    )
    links_personalise([message], bulk_job_id=bulk_job_id)
    rows: list = [message]
    media_files = []
    if media is not None:
        media_files.append(
            MediaFile(
                message=message,
                s3_key=media.s3_key,
                content_type=media.content_type,
                size=media.size,
                filename=safe_filename(media.filename) if media.filename else "",
            )
        )
        rows += media_files
    entry = None
    if audit and getattr(requested_by, "pk", None):
        entry = audit_entry(
            user=requested_by,
            action="message.send",
            resource_type="message",
            resource_id=message.pk,
            details={
                "channel": request.channel,
                "messageType": message.message_type,
                "contactId": str(request.contact_id),
            },
        )
        rows.append(entry)
    # Message, media and audit entry in one statement (PostgreSQL). A double opt-in confirmation keeps
    # its savepoint: its caller goes on in the same transaction whatever the outcome.
    with transaction.atomic() if request.confirms_email_request else contextlib.nullcontext():
        rows_insert(rows)
    # What was just written, cached as a prefetch would: showing the message reads no media back.
    written = message.media.all()
    written._result_cache, written._prefetch_done = media_files, True
    message._prefetched_objects_cache = {"media": written}
    if entry is not None:
        audit_logged(entry)
    if enqueue:
        transaction.on_commit(lambda: _enqueue(message.pk))
    logger.info(
        "message queued id=%s contactId=%s channel=%s type=%s",
        message.pk,
        request.contact_id,
        request.channel,
        message.message_type,
    )
    return message
