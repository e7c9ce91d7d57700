"""Play the customer on `make run`: a WhatsApp message or a status event, delivered as Amazon SNS would.

ENVIRONMENT=local only. The event is built as End User Messaging Social publishes it (the EUM envelope
around Meta's webhook entry), wrapped in an SNS Notification for the configured topic, signed with the
local SNS identity (localdev/sns_local.py, which only ENVIRONMENT=local trusts) and POSTed to the
platform's real endpoint, /webhooks/sns/: signature, topic, de-duplication, the inbound queue and
worker, consent keywords and media download all run as in production. An image is first handed to
the local End User Messaging Social, from which the worker fetches it (GetWhatsAppMessageMedia).

    scripts/manage.sh play_customer text "Hello, is my order on its way?"
    scripts/manage.sh play_customer image --caption "This one"        (a generated PNG, or --file)
    scripts/manage.sh play_customer stop                              (the opt-out keyword)
    scripts/manage.sh play_customer status read                       (of the latest WhatsApp sent)
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import struct
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from localdev.fake_socialmessaging import is_local_url
from localdev.sns_local import ensure_identity

MAX_FILE_BYTES = 5 * 1024 * 1024  # WhatsApp's image limit
STATUSES = ("sent", "delivered", "read", "failed")
WABA_ID = "365731266123456"  # Meta's WABA id in the envelope (the local WABA's)
META_PHONE_NUMBER_ID = "321010217760100"


def png(width: int = 96, height: int = 96, rgb: tuple[int, int, int] = (0, 122, 94)) -> bytes:
    """A small solid-colour PNG, so an image can be sent without a file at hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class Command(BaseCommand):
    help = "ENVIRONMENT=local only: send a WhatsApp message (text, image, STOP) or a status event as a customer."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="kind", required=True)
        text = sub.add_parser("text", help="a text message")
        text.add_argument("body")
        image = sub.add_parser("image", help="an image (a generated PNG unless --file)")
        image.add_argument("--file", type=Path, help="a JPEG or PNG of at most 5 MB")
        image.add_argument("--caption", default="")
        sub.add_parser("stop", help="the opt-out keyword STOP")
        status = sub.add_parser("status", help="a status event of an outbound WhatsApp message")
        status.add_argument("status", choices=STATUSES)
        status.add_argument("--message", help="the message id (default: the latest outbound WhatsApp message)")
        for each in (text, image, sub.choices["stop"], status):
            each.add_argument("--from", dest="sender", default="14255550150", help="the customer's number (wa_id)")
            each.add_argument("--name", default="Local Customer", help="the customer's WhatsApp profile name")
            each.add_argument(
                "--url",
                default=f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}",
                help="the platform `make run` serves (default http://127.0.0.1:$WEB_PORT)",
            )

    def handle(self, *args, kind: str, sender: str, name: str, url: str, **options):
        # Signing as SNS and injecting customers' messages is a hole anywhere but a developer's machine.
        if settings.ENVIRONMENT != "local":
            raise CommandError(f"play_customer runs only with ENVIRONMENT=local (this is {settings.ENVIRONMENT}).")
        if not is_local_url(url):
            raise CommandError(f"--url must be this machine's platform (http://127.0.0.1:PORT), not {url!r}.")
        sender = sender.lstrip("+")
        if not sender.isdigit():
            raise CommandError("--from is a phone number in digits, e.g. 14255550150.")
        envelope_message_id = ""
        if kind == "status":
            value, envelope_message_id = self._status(options["status"], options.get("message"))
        else:
            message = {
                "from": sender,
                "id": f"wamid.LOCAL{uuid.uuid4().hex.upper()}",
                "timestamp": str(int(datetime.now(UTC).timestamp())),
            }
            if kind == "text":
                message.update(type="text", text={"body": options["body"]})
            elif kind == "stop":
                message.update(type="text", text={"body": "STOP"})
            else:
                message.update(type="image", image=self._image(options.get("file"), options.get("caption", "")))
            value = {
                **self._metadata(),
                "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                "messages": [message],
            }
        notification = self._notification(value, envelope_message_id)
        response = requests.post(
            f"{url.rstrip('/')}/webhooks/sns/",
            data=json.dumps(notification),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": notification["Type"],
                "x-amz-sns-message-id": notification["MessageId"],
                "x-amz-sns-topic-arn": notification["TopicArn"],
                "User-Agent": "Amazon Simple Notification Service Agent",
            },
            timeout=30,
        )
        if response.status_code >= 300:
            raise CommandError(f"/webhooks/sns/ answered HTTP {response.status_code}: {response.text[:500]}")
        self.stdout.write(self.style.SUCCESS(f"Delivered a {kind} event as +{sender} (HTTP {response.status_code})."))

    # --- the parts of the event ---

    def _metadata(self) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "12065550100", "phone_number_id": META_PHONE_NUMBER_ID},
        }

    def _image(self, path: Path | None, caption: str) -> dict[str, Any]:
        if path is None:
            data, mime_type = png(), "image/png"
        else:
            if not path.is_file():
                raise CommandError(f"{path} is not a file.")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CommandError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
            data, mime_type = path.read_bytes(), mimetypes.guess_type(path.name)[0] or ""
            if mime_type not in ("image/jpeg", "image/png"):
                raise CommandError(f"{path}: WhatsApp images are JPEG or PNG, not {mime_type or 'unknown'}.")
        fake = os.environ.get("AWS_ENDPOINT_URL_SOCIALMESSAGING", "")
        if not is_local_url(fake):
            raise CommandError(
                "AWS_ENDPOINT_URL_SOCIALMESSAGING is not the local End User Messaging Social: use scripts/manage.sh."
            )
        response = requests.post(f"{fake}/_fake/media", data=data, headers={"Content-Type": mime_type}, timeout=30)
        if response.status_code != 200:
            raise CommandError(f"the local End User Messaging Social refused the image: {response.text[:300]}")
        image = {"mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(), "id": response.json()["mediaId"]}
        if caption:
            image["caption"] = caption
        return image

    def _status(self, status: str, message_id: str | None) -> tuple[dict[str, Any], str]:
        from messaging.models import Channel, Direction, Message

        outbound = Message.objects.filter(direction=Direction.OUTBOUND, channel=Channel.WHATSAPP)
        message = outbound.filter(pk=message_id).first() if message_id else outbound.order_by("-created_at").first()
        if message is None:
            raise CommandError("No outbound WhatsApp message to report on: send one first (or give --message).")
        event: dict[str, Any] = {
            "id": message.whatsapp_message_id or f"wamid.LOCAL{uuid.uuid4().hex.upper()}",
            "status": status,
            "timestamp": str(int(datetime.now(UTC).timestamp())),
            "recipient_id": (message.contact.phone or "").lstrip("+") if message.contact_id else "",
            "biz_opaque_callback_data": str(message.pk),
        }
        if status == "failed":
            event["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
        return {**self._metadata(), "statuses": [event]}, message.provider_message_id

    def _notification(self, value: dict[str, Any], envelope_message_id: str) -> dict[str, Any]:
        phone_number_id = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
        account = settings.SNS_TOPIC_ARN.split(":")[4]
        phone_arn = (
            f"arn:aws:social-messaging:{settings.AWS_REGION}:{account}:phone-number-id/"
            f"{phone_number_id.removeprefix('phone-number-id-')}"
        )
        entry = {"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}
        envelope: dict[str, Any] = {
            "context": {
                "MetaWabaIds": [
                    {"wabaId": WABA_ID, "arn": f"arn:aws:social-messaging:{settings.AWS_REGION}:{account}:waba/local"}
                ],
                "MetaPhoneNumberIds": [{"metaPhoneNumberId": META_PHONE_NUMBER_ID, "arn": phone_arn}],
            },
            "whatsAppWebhookEntry": json.dumps(entry, separators=(",", ":")),
            "aws_account_id": account,
            "message_timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if envelope_message_id:
            envelope["messageId"] = envelope_message_id
        topic = settings.SNS_TOPIC_ARN
        notification = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": json.dumps(envelope, separators=(",", ":")),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "UnsubscribeURL": f"https://sns.{settings.AWS_REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:local",
        }
        return ensure_identity().sign(notification)
