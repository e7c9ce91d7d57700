"""RCS through AWS End User Messaging SMS (boto3 client ``pinpoint-sms-voice-v2``), `SendRcsMessage`.

A text message with up to 11 suggestions (replies, open-URL and dial actions) from the RCS agent in
settings.RCS_AGENT_ID, with settings.RCS_CONFIGURATION_SET so delivery and read events reach
/webhooks/sns/. **Never** a ``FallbackConfiguration``, and never a pool or phone number as the
origination (settings refuse them): either would let AWS fall back to SMS, and the contact may not
have opted in to SMS (requirement 3.7: no fallback channels). `send_request` is the only builder of
the call and has no parameter that could add a fallback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import ValidationError

from contacts.phones import normalize_phone
from messaging import ratelimit
from messaging.channels import register
from messaging.channels.base import Delivery, Provider, ProviderRequest
from messaging.models import MessageType

if TYPE_CHECKING:
    from messaging.outbound.request import SendRequest

SERVICE = "pinpoint-sms-voice-v2"
BODY_MAX_CHARS = 3072  # RcsTextBody limit (the service model)
MAX_SUGGESTIONS = 11
SUGGESTION_TEXT_MAX = 25
POSTBACK_MAX = 2048
URL_MAX = 2048
# Our suggestion kinds → the model's action structure and the fields it takes.
SUGGESTION_KINDS = {"reply": "Reply", "url": "OpenUrl", "dial": "DialPhone"}


def _suggestion_problem(n: int, suggestion: Any) -> str | None:
    if not isinstance(suggestion, dict):
        return f"suggestion {n} is not an object"
    kind = suggestion.get("type")
    if kind not in SUGGESTION_KINDS:
        return f"suggestion {n}: type must be reply, url or dial"
    allowed = {"type", "text", "postbackData", "url" if kind == "url" else "", "phone" if kind == "dial" else ""} - {""}
    if extra := sorted(set(suggestion) - allowed):
        return f"suggestion {n}: unknown field(s) {', '.join(extra)}"
    text = suggestion.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > SUGGESTION_TEXT_MAX:
        return f"suggestion {n}: text must be 1 to {SUGGESTION_TEXT_MAX} characters"
    postback = suggestion.get("postbackData", text)
    if not isinstance(postback, str) or not postback or len(postback) > POSTBACK_MAX:
        return f"suggestion {n}: postbackData must be 1 to {POSTBACK_MAX} characters"
    if kind == "url":
        url = suggestion.get("url")
        if not isinstance(url, str) or len(url) > URL_MAX or not re.fullmatch(r"https://\S+", url):
            return f"suggestion {n}: url must be an https:// address without spaces"
    if kind == "dial":
        try:
            normalize_phone(suggestion.get("phone") or "")
        except ValidationError:
            return f"suggestion {n}: phone is not a phone number"
    return None


def content_problem(request: SendRequest) -> tuple[str | None, dict]:
    """The gate's content rule for RCS: (problem or None, the options as they will be sent)."""
    if not settings.RCS_AGENT_ID:
        return "RCS is not set up here (RCS_AGENT_ID is empty)", {}
    extras = request.has_media or request.template_name or request.subject or request.html
    if request.message_type != MessageType.TEXT or extras:
        return "an RCS message is text with suggestions (no media, template, subject or HTML)", {}
    options = dict(request.options or {})
    if unknown := sorted(set(options) - {"suggestions"}):
        return f"unknown RCS option(s): {', '.join(unknown)}", {}
    if not request.text.strip():
        return "the text is empty", {}
    limit = min(settings.RCS_MAX_CHARS, BODY_MAX_CHARS)
    if len(request.text) > limit:
        return f"the RCS message has {len(request.text)} characters; at most {limit} can be sent", {}
    suggestions = options.get("suggestions") or []
    if not isinstance(suggestions, list):
        return "suggestions must be a list", {}
    if len(suggestions) > MAX_SUGGESTIONS:
        return f"at most {MAX_SUGGESTIONS} suggestions", {}
    for n, suggestion in enumerate(suggestions, start=1):
        if problem := _suggestion_problem(n, suggestion):
            return problem, {}
    return None, {"suggestions": suggestions} if suggestions else {}


def _action(suggestion: dict) -> dict:
    kind = suggestion["type"]
    postback = suggestion.get("postbackData") or suggestion["text"]
    action: dict[str, Any] = {"Text": suggestion["text"], "PostbackData": postback}
    if kind == "url":
        action["Url"] = suggestion["url"]
    elif kind == "dial":
        action["PhoneNumber"] = normalize_phone(suggestion["phone"])
    return {SUGGESTION_KINDS[kind]: action}


def send_request(*, to: str, body: str, suggestions: list[dict] | None = None) -> ProviderRequest:
    content: dict[str, Any] = {"Content": {"TextMessage": {"Body": body}}}
    if suggestions:
        content["Suggestions"] = [_action(s) for s in suggestions]
    params: dict[str, Any] = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.RCS_AGENT_ID,
        "RcsMessageContent": content,
    }
    if settings.RCS_CONFIGURATION_SET:
        params["ConfigurationSetName"] = settings.RCS_CONFIGURATION_SET
    # No FallbackConfiguration, ever (module docstring).
    return ProviderRequest(service=SERVICE, operation="SendRcsMessage", params=params, loggable=params)


@register
class RcsProvider(Provider):
    channel = "rcs"
    service = SERVICE
    send_operation = "SendRcsMessage"
    permanent_codes = frozenset(
        {
            "DESTINATION_PHONE_NUMBER_OPTED_OUT",
            "DESTINATION_COUNTRY_BLOCKED",
            "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
            "INVALID_PARAMETER",
        }
    )

    def buckets(self, delivery: Delivery) -> list[ratelimit.Bucket]:
        return ratelimit.rcs_buckets()

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        return send_request(
            to=delivery.clearance.contact.phone,
            body=delivery.message.content,
            suggestions=(delivery.message.options or {}).get("suggestions"),
        )

    def provider_code(self, exc: ClientError) -> str:
        return str(exc.response.get("Reason") or "")
