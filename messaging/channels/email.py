"""Email through Amazon SES v2 (boto3 client ``sesv2``), from settings.SES_SENDER_NAME/EMAIL
(``WECARE.DIGITAL <one@wecare.digital>``), as text, HTML or both (multipart/alternative).

HTML is sanitised with nh3 before it is stored and before it is sent (`sanitize_html`): scripts,
event handlers, forms and foreign protocols are removed, links get rel="noopener noreferrer".
"""

from __future__ import annotations

from email.utils import formataddr

import nh3
from django.conf import settings

from messaging.channels import ChannelError, ProviderRequest, execute

SERVICE = "sesv2"
SUBJECT_MAX_CHARS = 998  # RFC 5322 line length


def sanitize_html(html: str) -> str:
    return nh3.clean(html or "", link_rel="noopener noreferrer").strip()


def visible_text(html: str) -> str:
    """The text a reader would see (tags removed): an HTML body with none of it is empty."""
    return nh3.clean(html or "", tags=set()).strip()


def sender() -> str:
    return formataddr((settings.SES_SENDER_NAME, settings.SES_SENDER_EMAIL))


def send_request(*, to: str, subject: str, text: str = "", html: str = "", message_id: str = "") -> ProviderRequest:
    body: dict = {}
    if text:
        body["Text"] = {"Data": text, "Charset": "UTF-8"}
    if html:
        body["Html"] = {"Data": html, "Charset": "UTF-8"}
    params = {
        "FromEmailAddress": sender(),
        "Destination": {"ToAddresses": [to]},
        "Content": {"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": body}},
    }
    if message_id:
        # Echoed in SES events, to find the message a bounce or complaint is about.
        params["EmailTags"] = [{"Name": "wecare-message-id", "Value": message_id}]
    return ProviderRequest(service=SERVICE, operation="SendEmail", params=params, loggable=params)


def send(request: ProviderRequest) -> tuple[str, str]:
    """Send; returns (MessageId, AWS request id)."""
    response = execute(request)
    message_id = response.get("MessageId")
    if not message_id:
        raise ChannelError("SendEmail returned no MessageId", permanent=False, service=SERVICE)
    return message_id, response.get("ResponseMetadata", {}).get("RequestId", "")
