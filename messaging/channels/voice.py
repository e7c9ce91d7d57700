"""Voice: text-to-speech calls through AWS End User Messaging SMS (boto3 client ``pinpoint-sms-voice-v2``).

`SendVoiceMessage` calls the contact and reads the body in a Polly voice: plain text or SSML
(``MessageBodyTextType``), from settings.VOICE_ORIGINATION_IDENTITY (a voice-capable number or a
pool), with settings.VOICE_CONFIGURATION_SET so the call's events (initiated, ringing, answered,
completed, busy, no answer, failed) reach /webhooks/sns/ (messaging.inbound.sms_voice_events).

`content_problem` is the gate's content rule for the channel: a non-empty body within
settings.VOICE_MAX_CHARS, SSML that is well-formed ``<speak>`` with only the tags Polly reads, and a
voice id of the service model. Every call leaves a `VoiceCall` row (kept 90 days), written by
`record_sent` once the send is recorded.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET  # noqa: N817 - the usual name
from functools import cache
from typing import TYPE_CHECKING

import botocore.session
from botocore.exceptions import ClientError
from django.conf import settings

from messaging import ratelimit
from messaging.channels import register
from messaging.channels.base import Delivery, Provider, ProviderRequest
from messaging.models import Message, MessageType, VoiceCall, VoiceCallStatus

if TYPE_CHECKING:
    from messaging.outbound.request import SendRequest

logger = logging.getLogger(__name__)

SERVICE = "pinpoint-sms-voice-v2"
BODY_MAX_CHARS = 6000  # SendVoiceMessage MessageBody limit (the service model)
TEXT_TYPES = ("TEXT", "SSML")
# The SSML tags Amazon Polly reads (amazon:* written with "-" for the parser); anything else is refused.
SSML_TAGS = frozenset(
    {
        "speak", "break", "emphasis", "lang", "mark", "p", "phoneme", "prosody", "s", "say-as", "sub", "w",
        "amazon-effect", "amazon-domain", "amazon-auto-breaths",
    }
)  # fmt: skip
_DECLARATION = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@cache
def voice_ids() -> frozenset[str]:
    """The VoiceId values of the installed service model (the API refuses any other)."""
    model = botocore.session.get_session().get_service_model(SERVICE)
    return frozenset(model.shape_for("VoiceId").enum)


def ssml_problem(body: str) -> str | None:
    """Why ``body`` is not SSML Polly would read, or None. No DTD or entity declarations at all."""
    if _DECLARATION.search(body):
        return "SSML may not declare a DOCTYPE or entities"
    try:
        root = ET.fromstring(body.replace("<amazon:", "<amazon-").replace("</amazon:", "</amazon-"))  # noqa: S314 - declarations refused above
    except ET.ParseError as exc:
        return f"the SSML is not well-formed XML ({exc})"
    if _local(root.tag) != "speak":
        return "SSML must be one <speak> element"
    for element in root.iter():
        if _local(element.tag) not in SSML_TAGS:
            return f"the SSML tag <{_local(element.tag).replace('amazon-', 'amazon:')}> is not one Amazon Polly reads"
    return None


def _local(tag: str) -> str:
    """A tag without its namespace: <speak xmlns="http://www.w3.org/2001/10/synthesis"> is <speak>."""
    return tag.rsplit("}", 1)[-1]


def options_for(options: dict | None) -> dict:
    """The call's options with the defaults filled in: voiceId (settings.VOICE_ID) and textType (TEXT)."""
    options = dict(options or {})
    return {
        "voiceId": str(options.get("voiceId") or settings.VOICE_ID).upper(),
        "textType": str(options.get("textType") or "TEXT").upper(),
    }


def content_problem(request: SendRequest) -> tuple[str | None, dict]:
    """The gate's content rule for a voice call: (problem or None, the options as they will be sent)."""
    extras = request.has_media or request.template_name or request.subject or request.html
    if request.message_type != MessageType.TEXT or extras:
        return "a voice call reads plain text or SSML (no media, template, subject or HTML)", {}
    unknown = sorted(set(request.options or {}) - {"voiceId", "textType"})
    if unknown:
        return f"unknown voice option(s): {', '.join(unknown)}", {}
    options = options_for(request.options)
    body = request.text
    if not body.strip():
        return "the text to read is empty", options
    limit = min(settings.VOICE_MAX_CHARS, BODY_MAX_CHARS)
    if len(body) > limit:
        return f"the call text has {len(body)} characters; at most {limit} can be read", options
    if options["textType"] not in TEXT_TYPES:
        return f"textType must be TEXT or SSML, not {options['textType']!r}", options
    if options["voiceId"] not in voice_ids():
        return f"{options['voiceId']!r} is not a voice of SendVoiceMessage", options
    if options["textType"] == "SSML" and (problem := ssml_problem(body)):
        return problem, options
    return None, options


def send_request(*, to: str, body: str, voice_id: str, text_type: str) -> ProviderRequest:
    params = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.VOICE_ORIGINATION_IDENTITY,
        "MessageBody": body,
        "MessageBodyTextType": text_type,
        "VoiceId": voice_id,
    }
    if settings.VOICE_CONFIGURATION_SET:
        params["ConfigurationSetName"] = settings.VOICE_CONFIGURATION_SET
    return ProviderRequest(service=SERVICE, operation="SendVoiceMessage", params=params, loggable=params)


@register
class VoiceProvider(Provider):
    channel = "voice"
    service = SERVICE
    send_operation = "SendVoiceMessage"
    # sms-voice-v2 names the cause in ``Reason`` (as for SMS): these will not change within our retries.
    permanent_codes = frozenset(
        {
            "DESTINATION_PHONE_NUMBER_OPTED_OUT",
            "DESTINATION_COUNTRY_BLOCKED",
            "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
            "INVALID_PARAMETER",
            "MONTHLY_SPEND_LIMIT_REACHED_FOR_VOICE",
        }
    )

    def buckets(self, delivery: Delivery) -> list[ratelimit.Bucket]:
        return ratelimit.voice_buckets()

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        options = options_for(delivery.message.options)
        return send_request(
            to=delivery.clearance.contact.phone,
            body=delivery.message.content,
            voice_id=options["voiceId"],
            text_type=options["textType"],
        )

    def provider_code(self, exc: ClientError) -> str:
        return str(exc.response.get("Reason") or "")

    def record_sent(self, message_ids: list, *, dry_run: bool) -> None:
        """Each call's VoiceCall row: "initiated" (its events move it on) or "dry_run" (nobody was called).
        A call recorded already (a redelivered task) keeps its row."""
        calls = []
        for message in Message.objects.filter(pk__in=message_ids).select_related("contact"):
            options = options_for(message.options)
            calls.append(
                VoiceCall(
                    message=message,
                    contact_id=message.contact_id,
                    origination=settings.VOICE_ORIGINATION_IDENTITY,
                    destination=message.contact.phone or "",
                    body=message.content,
                    text_type=options["textType"],
                    voice=options["voiceId"],
                    status=VoiceCallStatus.DRY_RUN if dry_run else VoiceCallStatus.INITIATED,
                    provider_message_id=message.provider_message_id,
                )
            )
        VoiceCall.objects.bulk_create(calls, ignore_conflicts=True)
