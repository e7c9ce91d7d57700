"""SMS through AWS End User Messaging SMS (boto3 client ``pinpoint-sms-voice-v2``).

`SendTextMessage` with the pool as OriginationIdentity (settings.SMS_POOL_ID): a pool id works only
there, SNS Publish cannot use one. `segment_count` says how many SMS parts a text costs, which is
stored on the message: GSM-7 texts take 160 characters in one part and 153 per part when split
(characters of the GSM-7 extension table, such as € [ ] { } ~ ^ | \\, take two); anything outside
GSM-7 forces UCS-2 for the whole text, 70 characters in one part and 67 per part (an emoji takes
two UTF-16 units). A single curly quote or non-breaking space doubles the price of a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError
from django.conf import settings

from messaging import ratelimit
from messaging.channels import register
from messaging.channels.base import Delivery, Provider, ProviderRequest

SERVICE = "pinpoint-sms-voice-v2"
BODY_MAX_CHARS = 1600  # SendTextMessage MessageBody limit

# GSM 03.38 default alphabet (without ESC) and the characters reached through the extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int


def _pack(units: list[int], per_part: int) -> int:
    """Parts needed when no character (an escape pair, a surrogate pair) may straddle two parts."""
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts += 1
            used = 0
        used += size
    return parts


def segment_count(text: str) -> Segments:
    if not text:
        return Segments("GSM-7", 0, 0)
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = [2 if ch in GSM7_EXTENDED else 1 for ch in text]
        total = sum(units)
        return Segments("GSM-7", total, 1 if total <= 160 else _pack(units, 153))
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    total = sum(units)
    return Segments("UCS-2", total, 1 if total <= 70 else _pack(units, 67))


def send_request(*, to: str, body: str) -> ProviderRequest:
    params = {
        "DestinationPhoneNumber": to,
        "OriginationIdentity": settings.SMS_POOL_ID,
        "MessageBody": body,
        "MessageType": settings.SMS_MESSAGE_TYPE,
    }
    if settings.SMS_CONFIGURATION_SET:
        # Its SNS event destination brings the delivery receipts back (messaging.feedback.sms).
        params["ConfigurationSetName"] = settings.SMS_CONFIGURATION_SET
    return ProviderRequest(service=SERVICE, operation="SendTextMessage", params=params, loggable=params)


@register
class SmsProvider(Provider):
    channel = "sms"
    service = SERVICE
    send_operation = "SendTextMessage"
    # sms-voice-v2 names the cause in ``Reason``: an opted-out or blocked destination will not change
    # within our retries; AWS's throttling and 5xx stay transient by the generic rule.
    permanent_codes = frozenset(
        {
            "DESTINATION_PHONE_NUMBER_OPTED_OUT",
            "DESTINATION_COUNTRY_BLOCKED",
            "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
            "INVALID_PARAMETER",
            "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT",
        }
    )

    def buckets(self, delivery: Delivery) -> list[ratelimit.Bucket]:
        return ratelimit.sms_buckets()

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        return send_request(to=delivery.clearance.contact.phone, body=delivery.message.content)

    def provider_code(self, exc: ClientError) -> str:
        return str(exc.response.get("Reason") or "")
