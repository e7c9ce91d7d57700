"""Email unsubscribe: a signed, expiring link in every email, List-Unsubscribe (RFC 2369) and One-Click
(RFC 8058) headers, and the withdrawal of the email opt-in it asks for (consent source ``unsubscribe``).

The token is ``django.core.signing`` over the contact id and the address the email went to (salted,
timestamped, SECRET_KEY-signed): it cannot be forged or moved to another contact, expires after
EMAIL_UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS, and carries nothing a reader could use (no address in clear).
"""

from __future__ import annotations

import hashlib
import html
import logging
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

from accounts.services import audit_record
from contacts.models import Channel, ConsentSource, Contact
from contacts.services import contact_set_opt_in

logger = logging.getLogger(__name__)

SALT = "wecare.unsubscribe.email"
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1: the POST body a mail client sends


class InvalidToken(Exception):
    """The link was tampered with, expired, or names a contact or address that no longer matches."""


@dataclass(frozen=True)
class UnsubscribeTarget:
    contact: Contact
    masked_email: str


def _address_digest(email: str) -> str:
    # Binds the token to the address it was sent to, without putting the address in the link.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def unsubscribe_token(contact: Contact) -> str:
    return signing.dumps({"c": str(contact.pk), "a": _address_digest(contact.email or "")}, salt=SALT, compress=True)


def unsubscribe_url(contact: Contact) -> str:
    path = reverse("unsubscribe", kwargs={"token": unsubscribe_token(contact)})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def unsubscribe_headers(contact: Contact) -> list[dict[str, str]]:
    """SES Simple-content headers: List-Unsubscribe (https link, optional mailto) and One-Click."""
    links = [f"<{unsubscribe_url(contact)}>"]
    if settings.EMAIL_UNSUBSCRIBE_MAILTO:
        links.append(f"<mailto:{settings.EMAIL_UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + str(contact.pk))}>")
    return [
        {"Name": "List-Unsubscribe", "Value": ", ".join(links)},
        {"Name": "List-Unsubscribe-Post", "Value": ONE_CLICK_BODY},
    ]


def unsubscribe_footers(contact: Contact) -> tuple[str, str]:
    """(text, HTML) appended to an email's bodies: the visible unsubscribe link."""
    url = unsubscribe_url(contact)
    text = f"\n\n--\nTo stop receiving these emails, unsubscribe: {url}\n"
    link = html.escape(url, quote=True)
    footer = (
        '<p style="margin-top:2em;font-size:12px;color:#666">'
        f'To stop receiving these emails, <a href="{link}">unsubscribe</a>.</p>'
    )
    return text, footer


def mask_email(email: str) -> str:
    """d***@example.org: enough for the reader to recognise their address, not enough to harvest it."""
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def unsubscribe_target(token: str) -> UnsubscribeTarget:
    """The contact a token names; InvalidToken if it is forged, expired or no longer matches."""
    max_age = settings.EMAIL_UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS * 86400
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidToken("This unsubscribe link has expired.") from None
    except signing.BadSignature:
        raise InvalidToken("This unsubscribe link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        raise InvalidToken("This unsubscribe link is not valid.")
    contact = Contact.objects.active().filter(pk=data["c"]).first()
    if contact is None or not contact.email or _address_digest(contact.email) != data.get("a"):
        # The contact was deleted or changed address: nothing to withdraw on this link.
        raise InvalidToken("This unsubscribe link no longer matches a subscription.")
    return UnsubscribeTarget(contact=contact, masked_email=mask_email(contact.email))


def unsubscribe_apply(token: str, *, one_click: bool) -> UnsubscribeTarget:
    """Withdraw the email opt-in the token names (consent history source ``unsubscribe``). Idempotent."""
    target = unsubscribe_target(token)
    changed = contact_set_opt_in(
        contact=target.contact, channel=Channel.EMAIL, value=False, actor=None, source=ConsentSource.UNSUBSCRIBE
    )
    audit_record(
        user=None,
        action="contact.unsubscribe",
        resource_type="contact",
        resource_id=target.contact.pk,
        details={"channel": Channel.EMAIL, "oneClick": one_click, "changed": changed},
    )
    logger.info("unsubscribe contact=%s one_click=%s changed=%s", target.contact.pk, one_click, changed)
    return target
