"""The one send request: what someone asks to send, built once, judged by the gate, stored by message_send.

``send_request_build(...)`` is the only builder callers need (the API, the pages, the admin form,
bulk, DLQ replay, the courtesies): it works out the message type and picks the WhatsApp number the
conversation lives on. ``SendRequest.from_message`` rebuilds the request of a stored message for the
second look of the gate right before the provider call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from contacts.models import Channel, Contact
from messaging.channels import whatsapp as whatsapp_channel
from messaging.feedback.suppressions import suppression_flag_annotate
from messaging.models import Direction, Message, MessageType


@dataclass(frozen=True)
class OutgoingMedia:
    """A file to send: its bytes (message_send uploads them) or an object already in the media bucket."""

    content_type: str
    size: int | None
    filename: str = ""
    data: bytes | IO[bytes] | None = None
    s3_key: str = ""


@dataclass(frozen=True)
class SendRequest:
    """What someone asks to send. Build it with `send_request_build` (which picks the WhatsApp phone
    number and the message type) or `SendRequest.from_message` for a stored message."""

    contact_id: Any
    channel: str
    message_type: str
    text: str = ""
    template_name: str = ""
    template_language: str = ""
    template_parameters: list | dict | None = None
    subject: str = ""
    html: str = ""
    media: OutgoingMedia | None = None
    origination_phone_number_id: str = ""
    # Reactions and read receipts: the wamid of the inbound message they are about.
    target_whatsapp_message_id: str = ""
    # WhatsApp templates: the header's text parameter ("" when the header has none; a media header
    # takes ``media``) and the button parameters by button index ("0" → URL suffix or quick-reply payload).
    template_header: str = ""
    template_buttons: dict | None = None
    # The text, subject, HTML and template parameters carry placeholders ({{name}}, {{attr.city}}) the
    # gate fills from the contact (messaging.personalise); a stored message is always rendered.
    personalise: bool = False
    # Channel options beyond the text (Message.options): voice {"voiceId", "textType"}, RCS {"suggestions"}.
    options: dict | None = None
    # Email: the pending double opt-in (webforms.EmailConfirmation id) this message confirms; the gate
    # lets exactly that confirmation through without email consent (messaging.safety, rule 3).
    confirms_email_request: Any = None
    # The contact as loaded (active) when the request was built: the gate uses it instead of loading
    # it again. Not part of the request's identity.
    contact: Contact | None = field(default=None, compare=False, repr=False)

    @property
    def has_media(self) -> bool:
        return self.media is not None

    @property
    def media_content_type(self) -> str:
        return self.media.content_type if self.media else ""

    @property
    def media_size(self) -> int | None:
        return self.media.size if self.media else None

    @classmethod
    def from_message(cls, message: Message) -> SendRequest:
        with_media = message.message_type in (*whatsapp_channel.MEDIA_TYPES, MessageType.TEMPLATE)
        media = message.media.all()[:1] if with_media else []
        media_file = media[0] if media else None
        template_extras = (message.whatsapp_payload or {}).get("template") or {}
        return cls(
            contact_id=message.contact_id,
            channel=message.channel,
            message_type=message.message_type,
            # Stored template messages keep the rendered body in content; the text is not sent.
            text="" if message.message_type == MessageType.TEMPLATE else message.content,
            template_name=message.template_name,
            template_language=message.template_language,
            template_parameters=message.template_parameters,
            subject=message.subject,
            html=message.html,
            media=OutgoingMedia(
                content_type=media_file.content_type,
                size=media_file.size,
                filename=media_file.filename,
                s3_key=media_file.s3_key,
            )
            if media_file
            else None,
            origination_phone_number_id=message.origination_phone_number_id,
            target_whatsapp_message_id=(message.whatsapp_payload or {}).get("reaction_to", ""),
            template_header=template_extras.get("header", ""),
            template_buttons=template_extras.get("buttons") or None,
            options=message.options or None,
            confirms_email_request=message.email_confirmation_id,
        )


def whatsapp_phone_number_for(contact: Contact) -> str:
    """The allowlisted number to write to this contact from: the number the contact last wrote to (the
    service window belongs to that number), else the first of settings.WHATSAPP_PHONE_NUMBER_IDS.
    Deterministic, so a conversation stays on one number."""
    allowed = settings.WHATSAPP_PHONE_NUMBER_IDS
    if hasattr(contact, "last_whatsapp_number"):  # read with the contact (`contact_for_send`)
        last = contact.last_whatsapp_number
    else:
        last = _last_whatsapp_numbers(contact.pk).first()
    if last and last in allowed:
        return last
    return allowed[0] if allowed else ""


def _last_whatsapp_numbers(contact_id):
    return (
        Message.objects.filter(contact=contact_id, channel=Channel.WHATSAPP, direction=Direction.INBOUND)
        .exclude(origination_phone_number_id="")
        .order_by("-created_at")
        .values_list("origination_phone_number_id", flat=True)
    )


def contact_for_send(contact_id: Any, channel: str) -> Contact | None:
    """The active contact a send is for, in one query with what the send path asks of it next: for
    WhatsApp the number it last wrote to, and whether its address on ``channel`` is suppressed (the
    gate's rule 9 then needs no query of its own when it is not)."""
    if not is_uuid(contact_id):
        return None
    contacts = Contact.objects.active().filter(pk=contact_id)
    if channel == Channel.WHATSAPP:
        contacts = contacts.annotate(last_whatsapp_number=Subquery(_last_whatsapp_numbers(OuterRef("pk"))[:1]))
    if channel in Channel.values:
        contacts = suppression_flag_annotate(contacts, channel, now=timezone.now())
    return contacts.first()


def _message_type(
    channel: str, template_name: str, media: OutgoingMedia | None, media_type: str, reaction_to: str = ""
) -> str:
    if channel == Channel.EMAIL:
        return MessageType.EMAIL
    if template_name:
        return MessageType.TEMPLATE
    if reaction_to:
        return MessageType.REACTION
    if media is not None:
        # An unknown content type becomes "document", which the gate then refuses with a clear reason.
        return media_type or whatsapp_channel.media_type_for(media.content_type) or MessageType.DOCUMENT
    return MessageType.TEXT


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def send_request_build(
    *,
    contact_id: Any,
    channel: str,
    text: str = "",
    media: OutgoingMedia | None = None,
    media_type: str = "",
    template_name: str = "",
    template_language: str = "",
    template_parameters: list | dict | None = None,
    subject: str = "",
    html: str = "",
    origination_phone_number_id: str = "",
    reaction_to: str = "",
    template_header: str = "",
    template_buttons: dict | None = None,
    personalise: bool = False,
    options: dict | None = None,
    contact: Contact | None = None,
) -> SendRequest:
    """The request to hand to message_send (and to the gate); picks the WhatsApp number when none is given.

    Pass ``contact`` (active, loaded a moment ago) when you have it: neither this nor the gate loads
    it again.
    """
    if contact is None:
        contact = contact_for_send(contact_id, channel)
    if channel == Channel.WHATSAPP and not origination_phone_number_id and contact is not None:
        origination_phone_number_id = whatsapp_phone_number_for(contact)
    return SendRequest(
        contact_id=contact_id,
        channel=channel,
        message_type=_message_type(channel, template_name, media, media_type, reaction_to),
        text=text or "",
        template_name=template_name or "",
        template_language=template_language or "",
        template_parameters=template_parameters,
        subject=subject or "",
        html=html or "",
        media=media,
        origination_phone_number_id=origination_phone_number_id or "",
        target_whatsapp_message_id=reaction_to or "",
        template_header=template_header or "",
        template_buttons=template_buttons or None,
        personalise=personalise,
        options=options or None,
        contact=contact,
    )
