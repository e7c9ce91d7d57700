"""Sign SNS messages exactly as Amazon SNS does, with a key and certificate made on the spot.

Used by the tests (and the inbound benchmark) so the real verification code runs offline:
point settings.SNS_CERT_FETCHER at ``fetch_local_certificate`` and register the certificate's PEM
under the SigningCertURL the messages name.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from messaging.sns import string_to_sign

FIXTURES = Path("/work/shared/reference/fixtures")
FIXTURE_TOPIC = "arn:aws:sns:us-east-1:123456789012:eum-social-events"
FIXTURE_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
LOCAL_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-10ca1c0ffee0000000000000000000aa.pem"
PHONE_ARN = "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/976c72a700aac43eaf573ae050example"
PHONE_NUMBER_ID = "phone-number-id-976c72a700aac43eaf573ae050example"
META_PHONE_NUMBER_ID = "321010217760100"

# URL → PEM bytes served by fetch_local_certificate; tests fill it.
LOCAL_CERTIFICATES: dict[str, bytes] = {}
FETCHED: list[str] = []


def fetch_local_certificate(url: str) -> bytes:
    """A certificate fetcher for tests: serves LOCAL_CERTIFICATES, records every fetch."""
    from messaging.sns import SNSVerificationError

    FETCHED.append(url)
    try:
        return LOCAL_CERTIFICATES[url]
    except KeyError:
        raise SNSVerificationError(f"{url} answered HTTP 404.") from None


SUBSCRIBE_FETCHES: list[str] = []


def record_subscribe_url(url: str) -> bytes:
    SUBSCRIBE_FETCHES.append(url)
    return b"<ConfirmSubscriptionResponse/>"


@dataclass
class SigningIdentity:
    key: rsa.RSAPrivateKey
    cert_pem: bytes

    @classmethod
    def create(cls, common_name: str = "sns.amazonaws.com") -> SigningIdentity:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert_pem=cert.public_bytes(serialization.Encoding.PEM))

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """Return ``message`` with SignatureVersion and Signature set, as SNS would send it."""
        signed = dict(message, SignatureVersion=version)
        # SignatureVersion 1 is SHA1withRSA: that is what SNS signs with, not our choice.
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


def sns_notification(
    message: str, *, topic: str = FIXTURE_TOPIC, message_id: str | None = None, cert_url: str = LOCAL_CERT_URL
) -> dict[str, Any]:
    """An unsigned SNS Notification body (sign it with SigningIdentity.sign)."""
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:sub",
    }


def headers_for(body: dict[str, Any]) -> dict[str, str]:
    """The x-amz-sns-* headers SNS sends with ``body`` (as Django test-client extra kwargs)."""
    return {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": body.get("Type", ""),
        "HTTP_X_AMZ_SNS_MESSAGE_ID": body.get("MessageId", ""),
        "HTTP_X_AMZ_SNS_TOPIC_ARN": body.get("TopicArn", ""),
        "HTTP_USER_AGENT": "Amazon Simple Notification Service Agent",
    }


def eum_envelope(value: dict[str, Any], *, message_id: str | None = None) -> str:
    """The EUM Social envelope (SNS Message) around one Meta change value."""
    entry = {"id": "365731266123456", "changes": [{"value": value, "field": "messages"}]}
    envelope: dict[str, Any] = {
        "context": {
            "MetaWabaIds": [
                {
                    "wabaId": "365731266123456",
                    "arn": "arn:aws:social-messaging:us-east-1:123456789012:waba/fb2594b8a7974770b128a409e2example",
                }
            ],
            "MetaPhoneNumberIds": [{"metaPhoneNumberId": META_PHONE_NUMBER_ID, "arn": PHONE_ARN}],
        },
        "whatsAppWebhookEntry": json.dumps(entry, separators=(",", ":")),
        "aws_account_id": "123456789012",
        "message_timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if message_id:
        envelope["messageId"] = message_id
    return json.dumps(envelope, separators=(",", ":"))


def inbound_value(message: dict[str, Any], *, wa_id: str = "14255550150", name: str = "Diego") -> dict[str, Any]:
    """A Meta change value carrying one inbound message from ``wa_id``."""
    message = {"from": wa_id, "timestamp": str(int(datetime.now(UTC).timestamp())), **message}
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "12065550100", "phone_number_id": META_PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    }


def status_value(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "12065550100", "phone_number_id": META_PHONE_NUMBER_ID},
        "statuses": [{"recipient_id": "14255550150", **status}],
    }


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_headers(name: str) -> dict[str, str]:
    headers = json.loads((FIXTURES / "sns-http-headers.json").read_text())[name]
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k.lower() != "content-type"}
