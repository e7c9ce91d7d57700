"""Email through Amazon SES v2 (boto3 client ``sesv2``), from settings.SES_SENDER_NAME/EMAIL
(``WECARE.DIGITAL <one@wecare.digital>``), as text, HTML or both (multipart/alternative).

HTML is sanitised with nh3 before it is stored and before it is sent (`sanitize_html`): scripts,
event handlers, forms and foreign protocols are removed, links get rel="noopener noreferrer".

Every email to a contact carries the unsubscribe link (body footer, List-Unsubscribe and the RFC 8058
One-Click header; messaging.feedback.unsubscribe) and names SES_CONFIGURATION_SET, whose SNS event
destination brings bounces, complaints and deliveries back (messaging.feedback.ses).
"""

from __future__ import annotations

from email.utils import formataddr

import nh3
from django.conf import settings

from messaging import ratelimit
from messaging.channels import register
from messaging.channels.base import Delivery, Provider, ProviderRequest
from messaging.feedback.unsubscribe import unsubscribe_footers, unsubscribe_headers

SERVICE = "sesv2"
SUBJECT_MAX_CHARS = 998  # RFC 5322 line length


def sanitize_html(html: str) -> str:
    return nh3.clean(html or "", link_rel="noopener noreferrer").strip()


def visible_text(html: str) -> str:
    """The text a reader would see (tags removed): an HTML body with none of it is empty."""
    return nh3.clean(html or "", tags=set()).strip()


def sender() -> str:
    return formataddr((settings.SES_SENDER_NAME, settings.SES_SENDER_EMAIL))


def send_request(
    *,
    to: str,
    subject: str,
    text: str = "",
    html: str = "",
    message_id: str = "",
    headers: list[dict[str, str]] | None = None,
) -> ProviderRequest:
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
    if headers:
        params["Content"]["Simple"]["Headers"] = headers
    if settings.SES_CONFIGURATION_SET:
        params["ConfigurationSetName"] = settings.SES_CONFIGURATION_SET
    if message_id:
        # Echoed in SES events, to find the message a bounce or complaint is about.
        params["EmailTags"] = [{"Name": "wecare-message-id", "Value": message_id}]
    return ProviderRequest(service=SERVICE, operation="SendEmail", params=params, loggable=params)


@register
class EmailProvider(Provider):
    channel = "email"
    service = SERVICE
    send_operation = "SendEmail"
    # SES v2: an account or sender problem, or a rejected message, is not cured by waiting a minute.
    permanent_codes = frozenset(
        {"MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException", "SendingPausedException"}
    )
    transient_codes = frozenset({"TooManyRequestsException", "LimitExceededException"})

    def buckets(self, delivery: Delivery) -> list[ratelimit.Bucket]:
        return ratelimit.email_buckets()

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        message = delivery.message
        contact = delivery.clearance.contact
        text_footer, html_footer = unsubscribe_footers(contact)
        return send_request(
            to=contact.email,
            subject=message.subject,
            text=message.content + text_footer if message.content else "",
            html=message.html + html_footer if message.html else "",
            message_id=str(message.pk),
            headers=unsubscribe_headers(contact),
        )
