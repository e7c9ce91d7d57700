"""WhatsApp through AWS End User Messaging Social (boto3 client ``socialmessaging``).

- `send_request` builds `SendWhatsAppMessage`: originationPhoneNumberId (from the allowlist, chosen
  by messaging.services), metaApiVersion (settings.WHATSAPP_META_API_VERSION, "v20.0") and the Meta
  Cloud API message object as JSON bytes. Every message carries our message UUID in
  ``biz_opaque_callback_data``, which Meta echoes in status events, so a status can be matched to
  its row by whatsapp_message_id or by that UUID.
- `media_upload_request` builds `PostWhatsAppMessageMedia` from an object in our media bucket;
  only the phone number that uploaded a media id may send it (reused for 29 days, `media_id_known`).
- `WhatsAppProvider` (the channel's `Provider`): the number's send bucket (plus the media bucket when
  a file must be uploaded first), the upload as the preparing call, the payload by message type, and
  Meta's error codes (in EUM Social's error message, "(#131026) ...") deciding permanence.
- `list_linked_accounts`, `list_templates`, `get_template` read WABAs and message templates for
  messaging.whatsapp_templates.

Media rules Meta enforces (type → content types, size) are here as data, so the safety gate refuses
a file Meta would refuse.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone

from messaging import ratelimit
from messaging.channels import register
from messaging.channels.base import ChannelError, Delivery, Provider, ProviderRequest, ProviderResult, execute
from messaging.models import MediaFile, MessageType

SERVICE = "socialmessaging"
TEXT_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
CALLBACK_DATA_MAX_CHARS = 512
MEDIA_ID_REUSE = timedelta(days=29)  # WhatsApp keeps uploaded media 30 days
DRY_RUN_MEDIA_ID = "dry-run-media-not-uploaded"

# Meta's error codes, which EUM Social passes on in its error message ("... (#131026) ...").
META_CODE = re.compile(r"\b(13\d{4})\b")
META_PERMANENT = frozenset(
    {
        "131008",  # required parameter missing
        "131009",  # parameter value not valid
        "131021",  # recipient cannot be the sender
        "131026",  # message undeliverable (not on WhatsApp, old app, terms not accepted)
        "131047",  # re-engagement: more than 24 hours since the customer wrote
        "131049",  # not delivered to keep the ecosystem healthy (marketing cap per user)
        "131051",  # unsupported message type
        "131053",  # media upload error
        "132000",  # template parameter count mismatch
        "132001",  # template does not exist
        "132012",  # template parameter format mismatch
        "130472",  # user is part of an experiment
    }
)
META_TRANSIENT = frozenset(
    {
        "130429",  # throughput reached (the number's rate limit)
        "131000",  # something went wrong (Meta)
        "131016",  # service unavailable
        "131048",  # spam rate limit hit
        "131056",  # too many messages to this recipient (pair rate limit)
        "133004",  # server temporarily unavailable
    }
)

MB = 1024 * 1024
# Meta Cloud API "Supported media types".
MEDIA_RULES: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    "audio": (frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB),
    "document": (
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
    "sticker": (frozenset({"image/webp"}), 500 * 1024),
}
MEDIA_TYPES = tuple(MEDIA_RULES)
MEDIA_MAX_BYTES = max(limit for _types, limit in MEDIA_RULES.values())
CAPTIONED_MEDIA = ("image", "video", "document")


def media_type_for(content_type: str) -> str | None:
    """The WhatsApp media type that accepts ``content_type`` (image/jpeg → image), or None."""
    for media_type, (content_types, _limit) in MEDIA_RULES.items():
        if content_type in content_types:
            return media_type
    return None


def text_payload(*, to: str, body: str, callback_data: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body},
        "biz_opaque_callback_data": callback_data[:CALLBACK_DATA_MAX_CHARS],
    }


def media_payload(
    *, to: str, media_type: str, media_id: str, caption: str = "", filename: str = "", callback_data: str
) -> dict[str, Any]:
    media: dict[str, Any] = {"id": media_id}
    if caption and media_type in CAPTIONED_MEDIA:
        media["caption"] = caption
    if filename and media_type == "document":
        media["filename"] = filename
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": media_type,
        media_type: media,
        "biz_opaque_callback_data": callback_data[:CALLBACK_DATA_MAX_CHARS],
    }


def template_payload(
    *,
    to: str,
    name: str,
    language: str,
    parameters: list | dict | None,
    callback_data: str,
    header_text: str = "",
    header_placeholder: str = "",
    header_media: dict[str, str] | None = None,
    buttons: list[tuple[int, str, str]] = (),
) -> dict[str, Any]:
    """A template message (Meta Cloud API template components): positional body parameters are a
    list, named ones a dict (name → text); ``header_text`` fills a text header's placeholder (named
    when ``header_placeholder`` is not a number); ``header_media`` is ``{"type": "image", "id": ...,
    "filename": ...}`` for a media header; ``buttons`` are (index, "url" | "quick_reply", value)."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    components: list[dict[str, Any]] = []
    if header_media:
        kind = header_media["type"]
        media: dict[str, Any] = {"id": header_media["id"]}
        if kind == "document" and header_media.get("filename"):
            media["filename"] = header_media["filename"]
        components.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
    elif header_text:
        parameter: dict[str, Any] = {"type": "text", "text": header_text}
        if header_placeholder and not header_placeholder.isdigit():
            parameter = {"type": "text", "parameter_name": header_placeholder, "text": header_text}
        components.append({"type": "header", "parameters": [parameter]})
    if isinstance(parameters, dict) and parameters:
        values = [{"type": "text", "parameter_name": key, "text": value} for key, value in parameters.items()]
        components.append({"type": "body", "parameters": values})
    elif parameters:
        components.append({"type": "body", "parameters": [{"type": "text", "text": v} for v in parameters]})
    for index, kind, value in buttons:
        parameter = {"type": "text", "text": value} if kind == "url" else {"type": "payload", "payload": value}
        components.append({"type": "button", "sub_type": kind, "index": str(index), "parameters": [parameter]})
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": callback_data[:CALLBACK_DATA_MAX_CHARS],
    }


def reaction_payload(*, to: str, target_message_id: str, emoji: str, callback_data: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "reaction",
        "reaction": {"message_id": target_message_id, "emoji": emoji},
        "biz_opaque_callback_data": callback_data[:CALLBACK_DATA_MAX_CHARS],
    }


def read_receipt_payload(*, target_message_id: str) -> dict[str, Any]:
    """Blue ticks for an inbound message (sent with SendWhatsAppMessage too)."""
    return {"messaging_product": "whatsapp", "message_id": target_message_id, "status": "read"}


def send_request(*, phone_number_id: str, payload: dict[str, Any]) -> ProviderRequest:
    params = {
        "originationPhoneNumberId": phone_number_id,
        "message": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "metaApiVersion": settings.WHATSAPP_META_API_VERSION,
    }
    return ProviderRequest(
        service=SERVICE,
        operation="SendWhatsAppMessage",
        params=params,
        loggable={**params, "message": payload},
    )


def media_upload_request(*, phone_number_id: str, bucket: str, key: str) -> ProviderRequest:
    params = {"originationPhoneNumberId": phone_number_id, "sourceS3File": {"bucketName": bucket, "key": key}}
    return ProviderRequest(service=SERVICE, operation="PostWhatsAppMessageMedia", params=params, loggable=params)


def media_id_known(media_file: MediaFile, phone_number_id: str, now) -> str:
    """A Meta media id for this file from this number, still valid (uploaded for this or another message)."""
    fresh_after = now - MEDIA_ID_REUSE
    if media_file.whatsapp_media_id and (media_file.whatsapp_media_uploaded_at or now) > fresh_after:
        return media_file.whatsapp_media_id
    other = (
        MediaFile.objects.filter(
            s3_key=media_file.s3_key,
            message__origination_phone_number_id=phone_number_id,
            whatsapp_media_uploaded_at__gt=fresh_after,
        )
        .exclude(whatsapp_media_id="")
        .order_by("-whatsapp_media_uploaded_at")
        .first()
    )
    return other.whatsapp_media_id if other else ""


def _template_needs(template):
    # Imported here: messaging.whatsapp_templates imports this module (for the template sync).
    from messaging.whatsapp_templates import template_needs

    return template_needs(template)


@register
class WhatsAppProvider(Provider):
    channel = "whatsapp"
    service = SERVICE
    send_operation = "SendWhatsAppMessage"
    permanent_codes = META_PERMANENT
    transient_codes = META_TRANSIENT

    @staticmethod
    def _template_with_media(delivery: Delivery) -> bool:
        template = delivery.clearance.template
        return (
            delivery.message.message_type == MessageType.TEMPLATE
            and template is not None
            and bool(_template_needs(template).media_type)
        )

    def _needs_upload(self, delivery: Delivery) -> bool:
        return delivery.media_file is not None and not delivery.media_id

    def prepare(self, delivery: Delivery) -> ProviderRequest | None:
        """A media message whose file this number has not uploaded within 29 days: upload it first."""
        message = delivery.message
        if message.message_type not in MEDIA_TYPES and not self._template_with_media(delivery):
            return None
        if delivery.media_id:  # given by the caller (bulk: uploaded once for the whole job)
            return None
        delivery.media_file = delivery.media_file or message.media.order_by("uploaded_at").first()
        if delivery.media_file is None:
            raise ChannelError("the media message has no file", permanent=True, code="MediaMissing", service=SERVICE)
        phone = delivery.clearance.phone_number_id
        delivery.media_id = media_id_known(delivery.media_file, phone, delivery.now)
        if delivery.media_id:
            return None
        return media_upload_request(phone_number_id=phone, bucket=settings.MEDIA_BUCKET, key=delivery.media_file.s3_key)

    def prepared(self, delivery: Delivery, result: ProviderResult) -> None:
        if result.dry_run:
            delivery.media_id = DRY_RUN_MEDIA_ID
            return
        media_id = result.response.get("mediaId")
        if not media_id:
            raise ChannelError("PostWhatsAppMessageMedia returned no mediaId", permanent=False, service=SERVICE)
        delivery.media_id = media_id
        MediaFile.objects.filter(pk=delivery.media_file.pk).update(
            whatsapp_media_id=media_id, whatsapp_media_uploaded_at=timezone.now()
        )

    def buckets(self, delivery: Delivery) -> list[ratelimit.Bucket]:
        buckets = ratelimit.whatsapp_send_buckets(delivery.clearance.phone_number_id)
        if self._needs_upload(delivery):
            return ratelimit.whatsapp_media_buckets() + buckets
        return buckets

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        message, clearance = delivery.message, delivery.clearance
        to, callback = clearance.contact.phone, str(message.pk)
        if message.message_type == MessageType.TEMPLATE:
            template = clearance.template
            needs = _template_needs(template)
            extras = (message.whatsapp_payload or {}).get("template") or {}
            given = {str(key): value for key, value in (extras.get("buttons") or {}).items()}
            payload = template_payload(
                to=to,
                name=template.name,
                language=template.language,
                parameters=message.template_parameters,
                callback_data=callback,
                header_text=extras.get("header", "") if needs.header_placeholder else "",
                header_placeholder=needs.header_placeholder,
                header_media={
                    "type": needs.media_type,
                    "id": delivery.media_id,
                    "filename": delivery.media_file.filename if delivery.media_file else "",
                }
                if needs.media_type
                else None,
                buttons=[
                    (button.index, button.kind, given[str(button.index)])
                    for button in needs.buttons
                    if given.get(str(button.index))
                ],
            )
        elif message.message_type in MEDIA_TYPES:
            payload = media_payload(
                to=to,
                media_type=message.message_type,
                media_id=delivery.media_id,
                caption=message.content,
                filename=delivery.media_file.filename,
                callback_data=callback,
            )
        elif message.message_type == MessageType.REACTION:
            payload = reaction_payload(
                to=to,
                target_message_id=(message.whatsapp_payload or {}).get("reaction_to", ""),
                emoji=message.content,
                callback_data=callback,
            )
        else:
            payload = text_payload(to=to, body=message.content, callback_data=callback)
        return send_request(phone_number_id=clearance.phone_number_id, payload=payload)

    def provider_code(self, exc: ClientError) -> str:
        match = META_CODE.search(exc.response.get("Error", {}).get("Message", "") or "")
        return match.group(1) if match else ""


def list_linked_accounts() -> list[dict[str, Any]]:
    """Every WABA linked to the account (ListLinkedWhatsAppBusinessAccounts, all pages)."""
    accounts: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"maxResults": 100}
        if token:
            params["nextToken"] = token
        page = execute(ProviderRequest(SERVICE, "ListLinkedWhatsAppBusinessAccounts", params))
        accounts.extend(page.get("linkedAccounts", []))
        token = page.get("nextToken")
        if not token:
            return accounts


def list_templates(waba_id: str) -> list[dict[str, Any]]:
    """Every template of a WABA (ListWhatsAppMessageTemplates, all pages): name, language, status..."""
    templates: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"id": waba_id, "maxResults": 100}
        if token:
            params["nextToken"] = token
        page = execute(ProviderRequest(SERVICE, "ListWhatsAppMessageTemplates", params))
        templates.extend(page.get("templates", []))
        token = page.get("nextToken")
        if not token:
            return templates


def get_template(waba_id: str, *, meta_template_id: str = "", name: str = "", language: str = "") -> dict[str, Any]:
    """Meta's template definition (components with the body text and its placeholders)."""
    params: dict[str, Any] = {"id": waba_id}
    if meta_template_id:
        params["metaTemplateId"] = meta_template_id
    else:
        params["templateName"] = name
        params["templateLanguageCode"] = language
    raw = execute(ProviderRequest(SERVICE, "GetWhatsAppMessageTemplate", params)).get("template") or "{}"
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ChannelError(f"GetWhatsAppMessageTemplate returned invalid JSON: {exc}", permanent=True) from exc
