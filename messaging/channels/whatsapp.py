"""WhatsApp through AWS End User Messaging Social (boto3 client ``socialmessaging``).

- `send_request` builds `SendWhatsAppMessage`: originationPhoneNumberId (from the allowlist, chosen
  by messaging.services), metaApiVersion (settings.WHATSAPP_META_API_VERSION, "v20.0") and the Meta
  Cloud API message object as JSON bytes. Every message carries our message UUID in
  ``biz_opaque_callback_data``, which Meta echoes in status events, so a status can be matched to
  its row by whatsapp_message_id or by that UUID.
- `media_upload_request` builds `PostWhatsAppMessageMedia` from an object in our media bucket;
  only the phone number that uploaded a media id may send it.
- `list_linked_accounts`, `list_templates`, `get_template` read WABAs and message templates for
  messaging.whatsapp_templates.

Media rules Meta enforces (type → content types, size) are here as data, so the safety gate refuses
a file Meta would refuse.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from messaging.channels import ChannelError, ProviderRequest, execute

SERVICE = "socialmessaging"
TEXT_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
CALLBACK_DATA_MAX_CHARS = 512

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
    *, to: str, name: str, language: str, parameters: list | dict | None, callback_data: str
) -> dict[str, Any]:
    """A template message; positional parameters are a list, named ones a dict (name → text)."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if isinstance(parameters, dict) and parameters:
        values = [{"type": "text", "parameter_name": key, "text": value} for key, value in parameters.items()]
        template["components"] = [{"type": "body", "parameters": values}]
    elif parameters:
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": v} for v in parameters]}]
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


def send(request: ProviderRequest) -> tuple[str, str]:
    """Send; returns (messageId, AWS request id)."""
    response = execute(request)
    message_id = response.get("messageId")
    if not message_id:
        raise ChannelError("SendWhatsAppMessage returned no messageId", permanent=False, service=SERVICE)
    return message_id, response.get("ResponseMetadata", {}).get("RequestId", "")


def media_upload_request(*, phone_number_id: str, bucket: str, key: str) -> ProviderRequest:
    params = {"originationPhoneNumberId": phone_number_id, "sourceS3File": {"bucketName": bucket, "key": key}}
    return ProviderRequest(service=SERVICE, operation="PostWhatsAppMessageMedia", params=params, loggable=params)


def upload_media(request: ProviderRequest) -> str:
    """Hand a file in S3 to Meta; returns the media id to send it with."""
    media_id = execute(request).get("mediaId")
    if not media_id:
        raise ChannelError("PostWhatsAppMessageMedia returned no mediaId", permanent=False, service=SERVICE)
    return media_id


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
