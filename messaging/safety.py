"""THE safety gate: every outbound message passes here, when it is requested and again right before
the provider call. There is no other path to a provider.

Usage
-----
- ``safety_evaluate(request, *, now=None, contact=..., tier=None) -> Refusal | None``: the decision only.
  Reads the contact, templates and the tier counters; writes nothing, logs nothing, counts nothing.
  Bulk pre-flight calls it per recipient (pass prefetched ``contact`` and a ``tier`` snapshot from
  `messaging.tier.tier_status` to save queries).
- ``safety_evaluate_many(requests, *, now=None, contacts=None, tier=None, tier_allows=None)``: the
  same decisions for many requests (bulk chunks): contacts and templates read in one query each,
  then the same rule code per request in memory. Returns a Refusal or a Clearance per request.
- ``safety_consent_current(request) -> QuerySet``: rules 1 and 3 as a query. The outbound path starts
  the provider attempt of a send with one statement that inserts its row only if this finds the
  contact (messaging.outbound.attempts), right before the provider call: consent withdrawn while the
  send waited for a rate-limit token or a media upload stops it.
- ``safety_consent_recheck(request, *, now=None)``: the same rules in one query, saying which failed:
  logged, counted and raised as SafetyRefusal.
- ``safety_check(request, *, now=None, reserve_tier=False) -> Clearance``: the same decision, and a
  refusal is logged (contactId, channel, code, reason) and counted (SafetyRefusalCount per day, code
  and channel; `safety_refusal_counts()` reads them), then raised as ``SafetyRefusal(code, reason)``.
  With ``reserve_tier=True`` (message_deliver, right before the provider call) a business-initiated
  WhatsApp send atomically takes its place in the tier, or is refused TIER_LIMIT.

Rules, checked in this order; the first that fails is the refusal (codes are stable, API clients
rely on them):

1. CONTACT_NOT_FOUND  no contact with that id, or it is deleted.
2. CONTENT_INVALID    the channel is not whatsapp, sms, email, voice or rcs.
3. OPT_IN_REQUIRED    the contact's opt-in for the channel is not true. One exception, and only one
                      (`email_confirmation_problem`): the double opt-in confirmation email of a web
                      form (webforms.EmailConfirmation), exactly as stored, to the address that asked,
                      while the request is unconfirmed and under 24 hours old, and only if no other
                      confirmation went to that address in the last 24 hours.
4. ADDRESS_MISSING    no phone (WhatsApp, SMS, Voice, RCS) or email (Email) on the contact.
5. PHONE_NOT_ALLOWED  WhatsApp: the origination phone-number id is missing or not in
                      settings.WHATSAPP_PHONE_NUMBER_IDS.
6. TEMPLATE_REQUIRED  WhatsApp free-form (text, media, reaction, read receipt) while now is not within
                      24 hours after the contact's last inbound message (never written: outside).
                      Logged as a warning.
7. CONTENT_INVALID    WhatsApp text empty or over 4096 characters; media missing, of a type or size
                      WhatsApp refuses, or a caption over 1024; SMS empty or over 1600 characters;
                      email without subject (or with a line break in it) or without body (text, or
                      HTML that still shows something after nh3 sanitising); a message type the
                      channel does not carry (e.g. a template by SMS); a voice call empty, over
                      VOICE_MAX_CHARS, in a voice the API lacks, or SSML that is not a well-formed
                      <speak> of Polly's tags; RCS empty, over RCS_MAX_CHARS, with a bad suggestion
                      (at most 11: reply, https URL or phone), or RCS_AGENT_ID not set.
8. TEMPLATE_INVALID   template unknown (name + language), not APPROVED, with a header or button we
                      cannot fill (location header, copy-code/flow button), or parameters not
                      matching its placeholders in number and format (positional list for {{1}},
                      object for {{name}}), or unusable values; a header text parameter, media file
                      (image/video/document header, of that type) or button parameter (URL suffix,
                      quick-reply payload) missing where the template has one, or given where not.
9. EMAIL_SUPPRESSED, SMS_SUPPRESSED, WHATSAPP_SUPPRESSED
                      the contact's address is suppressed on the channel (hard bounce, complaint,
                      soft bounces in a row, SES suppression list; invalid or blocked number;
                      WhatsApp permanent failure, maybe only for the template's category:
                      messaging.feedback). The reason says why and since when.
10. TIER_LIMIT        WhatsApp template outside the window (business-initiated) that would open a
                      new conversation while the phone number's tier is used up.

Between 5/6 and 7, a personalised request (``SendRequest.personalise``, bulk jobs) is rendered for
the contact (messaging.personalise) and the rules after judge the rendered message:

P. PLACEHOLDER_MISSING a placeholder without fallback ({{attr.city}}) has no value for this contact.
                      A placeholder that is not ours is the message's fault: CONTENT_INVALID.
   PLACEHOLDER_INVALID rules 7 or 8 refuse the rendered message but not the message as written: this
                      contact's values make it unsendable (too long, a parameter Meta refuses), so
                      this recipient is refused, not the whole message.

Missing data is a refusal. The gate never falls back to another channel or phone number.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from contacts.models import Channel, ConsentEvent, Contact
from messaging import personalise
from messaging.channels import email as email_channel
from messaging.channels import rcs as rcs_channel
from messaging.channels import sms as sms_channel
from messaging.channels import voice as voice_channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.feedback.suppressions import (
    contact_address,
    suppressed_addresses,
    suppression_known_clear,
    suppression_matching,
)
from messaging.models import MessageType, SafetyRefusalCount, Suppression, TemplateStatus, WhatsAppTemplate
from messaging.outbound.request import SendRequest
from messaging.tier import (
    TierStatus,
    tier_conversation_open,
    tier_conversations_open,
    tier_reserve,
    tier_status,
)
from messaging.whatsapp_templates import (
    template_extras_problem,
    template_parameter_problem,
    template_render,
)
from webforms.models import EmailConfirmation
from wecare import metrics
from wecare.errors import PlatformError

__all__ = [
    "READ_RECEIPT",
    "Clearance",
    "Refusal",
    "RefusalCode",
    "SafetyRefusal",
    "SendRequest",
    "email_confirmation_problem",
    "safety_check",
    "safety_consent_current",
    "safety_consent_recheck",
    "safety_evaluate",
    "safety_refusal_counts",
    "safety_refusal_record",
    "within_window",
]

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
# A double opt-in confirmation may go out this long after it was asked for, once per address per period.
CONFIRMATION_WINDOW = timedelta(hours=24)
# Not a message but a call on one: a read receipt for an inbound message (never stored as a Message).
READ_RECEIPT = "read_receipt"
REACTION_MAX_CHARS = 16  # one emoji, possibly with modifiers and joiners
FREE_FORM_WHATSAPP = (MessageType.TEXT, MessageType.REACTION, READ_RECEIPT, *whatsapp_channel.MEDIA_TYPES)


class RefusalCode(StrEnum):
    CONTACT_NOT_FOUND = "CONTACT_NOT_FOUND"
    OPT_IN_REQUIRED = "OPT_IN_REQUIRED"
    ADDRESS_MISSING = "ADDRESS_MISSING"
    PHONE_NOT_ALLOWED = "PHONE_NOT_ALLOWED"
    TEMPLATE_REQUIRED = "TEMPLATE_REQUIRED"
    CONTENT_INVALID = "CONTENT_INVALID"
    TEMPLATE_INVALID = "TEMPLATE_INVALID"
    TIER_LIMIT = "TIER_LIMIT"
    PLACEHOLDER_MISSING = "PLACEHOLDER_MISSING"
    PLACEHOLDER_INVALID = "PLACEHOLDER_INVALID"
    EMAIL_SUPPRESSED = "EMAIL_SUPPRESSED"
    SMS_SUPPRESSED = "SMS_SUPPRESSED"
    WHATSAPP_SUPPRESSED = "WHATSAPP_SUPPRESSED"


SUPPRESSED_CODES = {
    Channel.EMAIL: RefusalCode.EMAIL_SUPPRESSED,
    Channel.SMS: RefusalCode.SMS_SUPPRESSED,
    Channel.WHATSAPP: RefusalCode.WHATSAPP_SUPPRESSED,
}


# Refusals that point at a configuration or policy problem rather than a routine "no".
WARNING_CODES = (RefusalCode.TEMPLATE_REQUIRED, RefusalCode.PHONE_NOT_ALLOWED, RefusalCode.TIER_LIMIT)


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    reason: str


class SafetyRefusal(PlatformError):  # noqa: N818 - the gate's answer, named as in the issue
    """The gate said no. ``code`` is one of RefusalCode; ``reason`` is a sentence for people (422)."""

    http_status = 422

    def __init__(self, code: str, reason: str):
        super().__init__(reason, code=str(code))
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


@dataclass
class Clearance:
    """The gate's yes, with what it worked out on the way (used to store and send the message)."""

    contact: Contact
    phone_number_id: str = ""
    business_initiated: bool = False
    template: WhatsAppTemplate | None = None
    content: str = ""  # what the recipient reads: text, caption, rendered template or email text
    html: str = ""  # sanitised
    segments: int | None = None  # SMS parts
    options: dict = field(default_factory=dict)  # channel options as checked (voice id, RCS suggestions)
    details: dict = field(default_factory=dict)
    # The request as judged: rendered for the contact when it asked to be personalised (store this).
    request: SendRequest | None = None


_UNSET: Any = object()


def within_window(contact: Contact, now: datetime) -> bool:
    """Now is within 24 hours after the contact's last inbound message (WhatsApp service window)."""
    last = contact.last_inbound_message_at
    return last is not None and now - last < WINDOW


def _load_contact(contact_id) -> Contact | None:
    if contact_id in (None, ""):
        return None
    try:
        return Contact.objects.active().filter(pk=contact_id).first()
    except (ValidationError, ValueError, TypeError):
        return None


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def email_confirmation_problem(request: SendRequest, contact: Contact, now: datetime) -> str | None:
    """Why this request is not the one message allowed without email consent (None: it is).

    The exception to rule 3, kept this narrow on purpose: an email (nothing else) that is the pending
    double opt-in confirmation it names, word for word as stored with it (no HTML), for this contact,
    to the address that asked (still the contact's), unconfirmed, asked less than 24 hours ago, not
    followed by an email opt-out, and no other confirmation emailed to the address in the last 24 hours.
    """
    if request.channel != Channel.EMAIL or request.message_type != MessageType.EMAIL:
        return "only an email can confirm a double opt-in"
    pending_id = _uuid_or_none(request.confirms_email_request)
    pending = EmailConfirmation.objects.filter(pk=pending_id).first() if pending_id else None
    if pending is None or pending.contact_id != contact.pk:
        return "there is no such confirmation request for this contact"
    if pending.confirmed_at is not None:
        return "the request was confirmed already"
    if now - pending.created_at >= CONFIRMATION_WINDOW:
        return "the request is more than 24 hours old"
    if (contact.email or "").lower() != pending.email.lower():
        return "the contact's email address is not the one that asked"
    if (request.subject, request.text, request.html, request.has_media) != (pending.subject, pending.text, "", False):
        return "the email is not the confirmation that was asked for"
    withdrawn = ConsentEvent.objects.filter(
        contact=contact, channel=Channel.EMAIL, new_value=False, changed_at__gt=pending.created_at
    )
    if withdrawn.exists():
        return "the contact opted out of Email after asking"
    others = EmailConfirmation.objects.filter(email=pending.email, emailed_at__gt=now - CONFIRMATION_WINDOW)
    if others.exclude(pk=pending.pk).exists():
        return "a confirmation went to this address in the last 24 hours"
    return None


def _media_problem(request: SendRequest) -> str | None:
    if not request.has_media:
        return f"a WhatsApp {request.message_type} message needs a media file"
    allowed, max_size = whatsapp_channel.MEDIA_RULES[request.message_type]
    if request.media_content_type not in allowed:
        return (
            f"WhatsApp does not take {request.media_content_type or 'an unknown type'} as {request.message_type}; "
            f"use {', '.join(sorted(allowed))}"
        )
    if not request.media_size or request.media_size <= 0:
        return "the media file is empty or its size is unknown"
    if request.media_size > max_size:
        return f"the {request.message_type} is {request.media_size} bytes; WhatsApp takes at most {max_size}"
    if request.text and request.message_type not in whatsapp_channel.CAPTIONED_MEDIA:
        return f"a WhatsApp {request.message_type} cannot carry a caption"
    if len(request.text) > whatsapp_channel.CAPTION_MAX_CHARS:
        return f"the caption has {len(request.text)} characters; WhatsApp takes at most 1024"
    return None


def _content_problem(request: SendRequest, clearance: Clearance) -> str | None:
    """Checks rule 7 and fills the clearance's content, html and segments."""
    channel, kind = request.channel, request.message_type
    if channel == Channel.WHATSAPP:
        if request.subject or request.html:
            return "WhatsApp messages have no subject or HTML"
        if kind == MessageType.TEXT:
            if request.has_media:
                return "a text message carries no media file"
            if not request.text.strip():
                return "the text is empty"
            if len(request.text) > whatsapp_channel.TEXT_MAX_CHARS:
                return f"the text has {len(request.text)} characters; WhatsApp takes at most 4096"
            clearance.content = request.text
            return None
        if kind in whatsapp_channel.MEDIA_TYPES:
            clearance.content = request.text
            return _media_problem(request)
        if kind in (MessageType.REACTION, READ_RECEIPT):
            if not request.target_whatsapp_message_id:
                return f"a {kind.replace('_', ' ')} needs the WhatsApp id of the message it is about"
            if request.has_media or request.template_name:
                return f"a {kind.replace('_', ' ')} carries no media or template"
            if kind == MessageType.REACTION and not 0 < len(request.text.strip()) <= REACTION_MAX_CHARS:
                return "a reaction is one emoji"
            clearance.content = request.text
            return None
        if kind == MessageType.TEMPLATE:
            # A media header's file: Meta's rules for its type (whether the template has one: rule 8).
            if request.has_media:
                media_type = whatsapp_channel.media_type_for(request.media_content_type)
                if media_type not in whatsapp_channel.CAPTIONED_MEDIA:
                    return f"a template header takes an image, video or document, not {request.media_content_type!r}"
                header = dataclasses.replace(request, message_type=media_type, text="")
                return _media_problem(header)
            return None
        return f"WhatsApp messages of type {kind!r} cannot be sent from here"
    if channel in (Channel.VOICE, Channel.RCS):
        module = voice_channel if channel == Channel.VOICE else rcs_channel
        problem, clearance.options = module.content_problem(request)
        clearance.content = request.text
        return problem
    if channel == Channel.SMS:
        if kind != MessageType.TEXT or request.has_media or request.template_name or request.subject or request.html:
            return "an SMS is plain text only (no media, template, subject or HTML)"
        if not request.text.strip():
            return "the text is empty"
        if len(request.text) > sms_channel.BODY_MAX_CHARS:
            return f"the SMS has {len(request.text)} characters; at most 1600 can be sent"
        clearance.content = request.text
        clearance.segments = sms_channel.segment_count(request.text).count
        return None
    # Email
    if kind != MessageType.EMAIL or request.has_media or request.template_name:
        return "an email has a subject and a text and/or HTML body (no media or WhatsApp template)"
    subject = request.subject.strip()
    if not subject:
        return "the email has no subject"
    if "\r" in request.subject or "\n" in request.subject:
        return "the subject contains a line break"
    if len(request.subject) > email_channel.SUBJECT_MAX_CHARS:
        return f"the subject is longer than {email_channel.SUBJECT_MAX_CHARS} characters"
    html = email_channel.sanitize_html(request.html)
    html_shows_something = bool(email_channel.visible_text(html)) or "<img" in html
    if not request.text.strip() and not html_shows_something:
        return "the email has no body (text or HTML)"
    clearance.content = request.text
    clearance.html = html if html_shows_something else ""
    return None


def _template_problem(request: SendRequest, clearance: Clearance, lookups: GateLookups) -> str | None:
    if not request.template_name or not request.template_language:
        return "a template message needs templateName and templateLanguage"
    template = lookups.template(request.template_name, request.template_language)
    if template is None:
        return f"no template {request.template_name!r} in language {request.template_language!r}"
    if template.status != TemplateStatus.APPROVED:
        return f"template {template.name} ({template.language}) is {template.status}, not APPROVED"
    media_type = whatsapp_channel.media_type_for(request.media_content_type) if request.has_media else None
    extras = template_extras_problem(
        template, header=request.template_header, buttons=request.template_buttons, media_type=media_type
    )
    if problem := extras or template_parameter_problem(template, request.template_parameters):
        return problem
    clearance.template = template
    clearance.content = template_render(template, request.template_parameters)
    return None


class GateLookups:
    """Where the gate reads what it decides on: one by one from PostgreSQL and DynamoDB (this class),
    or from what a batch read once (`_BatchLookups`). The decision code is the same for both."""

    def __init__(self, *, now: datetime, tier: dict[str, TierStatus] | None = None, reserve_tier: bool = False):
        self.now, self.tier, self.reserve_tier = now, tier or {}, reserve_tier

    def contact(self, contact_id) -> Contact | None:
        return _load_contact(contact_id)

    def template(self, name: str, language: str) -> WhatsAppTemplate | None:
        return WhatsAppTemplate.objects.filter(name=name, language=language).first()

    def suppressions(self, channel: str, address: str) -> list[Suppression]:
        return suppressed_addresses(channel, [address], now=self.now).get(address, [])

    def tier_allows(self, phone_number_id: str, contact_id) -> bool:
        """A business-initiated conversation may be opened (reserve_tier: and its place is taken)."""
        if self.reserve_tier:
            return tier_reserve(phone_number_id, contact_id, now=self.now)
        status = self.tier.get(phone_number_id) or tier_status(phone_number_id, now=self.now)
        return not status.exhausted or tier_conversation_open(phone_number_id, contact_id, now=self.now)


class _BatchLookups(GateLookups):
    """Contacts and templates of many requests read in one query each; the tier from a snapshot per
    number and the open conversations of the batch (one DynamoDB batch read per number, when full),
    or from the caller's ``tier_allows`` (bulk: places reserved for the whole chunk)."""

    def __init__(
        self,
        requests: Sequence[SendRequest],
        *,
        now: datetime,
        contacts: dict[str, Contact] | None,
        tier: dict[str, TierStatus] | None,
        tier_allows: Callable[[str, Any], bool] | None,
    ):
        super().__init__(now=now, tier=dict(tier or {}))
        if contacts is None:
            contacts = contacts_for_gate(request.contact_id for request in requests)
        self.contacts = contacts
        pairs = {(r.template_name, r.template_language) for r in requests if r.template_name}
        names, languages = {name for name, _ in pairs}, {language for _, language in pairs}
        self.templates = (
            {(t.name, t.language): t for t in WhatsAppTemplate.objects.filter(name__in=names, language__in=languages)}
            if pairs
            else {}
        )
        self.requests = requests
        self.caller_tier_allows = tier_allows
        self.open_conversations: dict[str, set[str]] = {}
        self.suppressed: dict[str, dict[str, list[Suppression]]] = {}

    def contact(self, contact_id) -> Contact | None:
        return self.contacts.get(str(contact_id).lower())

    def template(self, name: str, language: str) -> WhatsAppTemplate | None:
        return self.templates.get((name, language))

    def suppressions(self, channel: str, address: str) -> list[Suppression]:
        if channel not in self.suppressed:  # one query per channel for every contact of the batch
            contacts = (self.contact(r.contact_id) for r in self.requests if r.channel == channel)
            addresses = [contact_address(c, channel) for c in contacts if c is not None]
            self.suppressed[channel] = suppressed_addresses(channel, addresses, now=self.now)
        return self.suppressed[channel].get(address, [])

    def tier_allows(self, phone_number_id: str, contact_id) -> bool:
        if self.caller_tier_allows is not None:
            return self.caller_tier_allows(phone_number_id, contact_id)
        if phone_number_id not in self.tier:
            self.tier[phone_number_id] = tier_status(phone_number_id, now=self.now)
        if not self.tier[phone_number_id].exhausted:
            return True
        if phone_number_id not in self.open_conversations:
            ids = [r.contact_id for r in self.requests if r.origination_phone_number_id == phone_number_id]
            self.open_conversations[phone_number_id] = tier_conversations_open(phone_number_id, ids, now=self.now)
        return str(contact_id).lower() in self.open_conversations[phone_number_id]


def contacts_for_gate(contact_ids: Iterable) -> dict[str, Contact]:
    """The active contacts of these ids, in one query, by str(pk) (what the batched gate reads)."""
    ids = set()
    for contact_id in contact_ids:
        try:
            ids.add(uuid.UUID(str(contact_id)))
        except (ValueError, TypeError, AttributeError):
            continue  # not an id: no such contact
    if not ids:
        return {}
    return {str(contact.pk): contact for contact in Contact.objects.active().filter(pk__in=ids)}


def _suppression_refusal(
    request: SendRequest, contact: Contact, clearance: Clearance, lookups: GateLookups
) -> Refusal | None:
    """Rule 9: the address is suppressed on the channel (for WhatsApp: for everything, or for the
    template's category)."""
    if suppression_known_clear(contact, request.channel):
        return None  # read with the contact a moment ago, in the same query: nothing suppresses the address
    address = contact_address(contact, request.channel)
    category = clearance.template.category if clearance.template is not None else ""
    suppression = suppression_matching(lookups.suppressions(request.channel, address), category=category)
    if suppression is None:
        return None
    what = "email address" if request.channel == Channel.EMAIL else "phone number"
    scope = f" for {suppression.category.lower()} templates" if suppression.category else ""
    until = f", until {suppression.expires_at:%Y-%m-%d %H:%M} UTC" if suppression.expires_at else ""
    return Refusal(
        SUPPRESSED_CODES[request.channel],
        f"the contact's {what} is suppressed on {Channel(request.channel).label}{scope} since "
        f"{suppression.created_at:%Y-%m-%d %H:%M} UTC ({suppression.get_reason_display()}){until}",
    )


def _evaluate(request: SendRequest, *, lookups: GateLookups, contact: Contact | None = _UNSET) -> Refusal | Clearance:
    now = lookups.now
    if contact is _UNSET and request.contact is not None:
        contact = request.contact  # loaded (active) when the request was built
    if contact is _UNSET:
        contact = lookups.contact(request.contact_id)
    elif contact is not None and str(contact.pk) != str(request.contact_id).lower():
        raise ValueError(f"the contact given ({contact.pk}) is not the request's ({request.contact_id})")
    if contact is None or contact.is_deleted:
        return Refusal(RefusalCode.CONTACT_NOT_FOUND, f"no contact {request.contact_id}")
    if request.channel not in Channel.values:
        return Refusal(RefusalCode.CONTENT_INVALID, f"unknown channel {request.channel!r}")
    channel_label = Channel(request.channel).label
    if not contact.opt_in(request.channel):
        if request.confirms_email_request in (None, ""):
            return Refusal(RefusalCode.OPT_IN_REQUIRED, f"the contact has not opted in to {channel_label}")
        if problem := email_confirmation_problem(request, contact, now):
            return Refusal(
                RefusalCode.OPT_IN_REQUIRED,
                f"the contact has not opted in to {channel_label}, and this is no allowed double opt-in "
                f"confirmation: {problem}",
            )
    address = contact.email if request.channel == Channel.EMAIL else contact.phone
    if not address:
        what = "email address" if request.channel == Channel.EMAIL else "phone number"
        return Refusal(RefusalCode.ADDRESS_MISSING, f"the contact has no {what} for {channel_label}")

    clearance = Clearance(contact=contact, request=request)
    in_window = False
    if request.channel == Channel.WHATSAPP:
        phone = request.origination_phone_number_id
        if not phone or phone not in settings.WHATSAPP_PHONE_NUMBER_IDS:
            return Refusal(
                RefusalCode.PHONE_NOT_ALLOWED,
                f"origination phone number {phone or '(none)'} is not in WHATSAPP_PHONE_NUMBER_IDS",
            )
        clearance.phone_number_id = phone
        in_window = within_window(contact, now)
        if request.message_type in FREE_FORM_WHATSAPP and not in_window:
            last = contact.last_inbound_message_at
            since = f"the last inbound message was at {last.isoformat()}" if last else "the contact never wrote"
            return Refusal(
                RefusalCode.TEMPLATE_REQUIRED,
                f"free-form WhatsApp messages need the 24-hour window ({since}): send an approved template",
            )

    written: SendRequest | None = None  # the message as written, when the rendered one is judged
    if request.personalise:
        try:
            rendered = personalise.request_render(request, personalise.contact_values(contact))
        except personalise.PlaceholderError as exc:
            return Refusal(RefusalCode.CONTENT_INVALID, str(exc))
        if rendered.missing:
            return Refusal(RefusalCode.PLACEHOLDER_MISSING, personalise.missing_reason(rendered.missing))
        written, request = request, rendered.request
        clearance.request = request

    if problem := _content_problem(request, clearance):
        if written is not None and _content_problem(written, Clearance(contact=contact)) is None:
            return Refusal(RefusalCode.PLACEHOLDER_INVALID, f"with this contact's values, {problem}")
        return Refusal(RefusalCode.CONTENT_INVALID, problem)

    if request.message_type == MessageType.TEMPLATE and (problem := _template_problem(request, clearance, lookups)):
        if written is not None and _template_problem(written, Clearance(contact=contact), lookups) is None:
            return Refusal(RefusalCode.PLACEHOLDER_INVALID, f"with this contact's values, {problem}")
        return Refusal(RefusalCode.TEMPLATE_INVALID, problem)
    if refusal := _suppression_refusal(request, contact, clearance, lookups):
        return refusal
    if request.message_type == MessageType.TEMPLATE:
        clearance.business_initiated = not in_window
        if clearance.business_initiated:
            phone = clearance.phone_number_id
            if not lookups.tier_allows(phone, contact.pk):
                return Refusal(
                    RefusalCode.TIER_LIMIT,
                    f"phone number {phone} has used its {settings.WHATSAPP_TIER_LIMIT} business-initiated "
                    "conversations of the last 24 hours",
                )
    return clearance


def safety_evaluate(
    request: SendRequest,
    *,
    now: datetime | None = None,
    contact: Contact | None = _UNSET,
    tier: dict[str, TierStatus] | None = None,
) -> Refusal | None:
    """The gate's decision, with no side effect: None means the message may be sent."""
    result = _evaluate(request, lookups=GateLookups(now=now or timezone.now(), tier=tier), contact=contact)
    return result if isinstance(result, Refusal) else None


def safety_evaluate_many(
    requests: Sequence[SendRequest],
    *,
    now: datetime | None = None,
    contacts: dict[str, Contact] | None = None,
    tier: dict[str, TierStatus] | None = None,
    tier_allows: Callable[[str, Any], bool] | None = None,
) -> list[Refusal | Clearance]:
    """The gate for many requests at once: the same rules and code as one by one, on what is read once.

    Contacts (unless given, keyed by str(pk), e.g. from `contacts_for_gate`) and templates are read in
    one query each. A business-initiated WhatsApp template asks ``tier_allows(phone, contact_id)``
    when given (bulk: the chunk's reserved places), else the tier snapshot as `safety_evaluate` does.
    Returns, per request and in order, its Refusal or its Clearance. Records nothing: callers that
    refuse record each refusal with `safety_refusal_record`.
    """
    lookups = _BatchLookups(requests, now=now or timezone.now(), contacts=contacts, tier=tier, tier_allows=tier_allows)
    # The contacts read for this batch, never a contact a request carries from when it was built.
    return [_evaluate(request, lookups=lookups, contact=lookups.contact(request.contact_id)) for request in requests]


def safety_check(
    request: SendRequest, *, now: datetime | None = None, contact: Contact | None = _UNSET, reserve_tier: bool = False
) -> Clearance:
    """The gate: returns the clearance, or logs, counts and raises SafetyRefusal."""
    lookups = GateLookups(now=now or timezone.now(), reserve_tier=reserve_tier)
    result = _evaluate(request, lookups=lookups, contact=contact)
    if isinstance(result, Refusal):
        safety_refusal_record(result, request, now=now)
        raise SafetyRefusal(result.code, result.reason)
    return result


def safety_consent_current(request: SendRequest) -> QuerySet[Contact]:
    """Rules 1 and 3 as a query: the request's contact, if it still is not deleted and opted in to the
    channel. A queryset, so the check can ride inside the statement that starts the provider attempt
    (messaging.outbound.attempts): the same rule, no extra round trip."""
    if request.channel not in Channel.values:
        raise ValueError(f"unknown channel {request.channel!r}")  # the gate refused it long before
    return Contact.objects.filter(_consented(request), pk=request.contact_id, deleted_at__isnull=True)


def _consented(request: SendRequest) -> Q:
    """Rule 3 as a condition on the contact row, with its one exception in its SQL form: a pending,
    unconfirmed double opt-in confirmation of this contact, under 24 hours old (the full check ran in
    the gate a moment before; this keeps a confirmation from going out after it was answered)."""
    consented = Q(**{f"opt_in_{request.channel}": True})
    pending_id = _uuid_or_none(request.confirms_email_request)
    if request.channel == Channel.EMAIL and pending_id is not None:
        pending = EmailConfirmation.objects.filter(
            pk=pending_id,
            contact=OuterRef("pk"),
            confirmed_at__isnull=True,
            created_at__gt=timezone.now() - CONFIRMATION_WINDOW,
        )
        consented |= Q(Exists(pending))
    return consented


def safety_consent_recheck(request: SendRequest, *, now: datetime | None = None) -> None:
    """Rules 1 and 3 again, right before the provider call, in one query: an opt-out, a STOP or a
    deletion committed while the send waited (for a rate-limit token, a media upload) stops it.
    Raises SafetyRefusal (logged and counted like any refusal)."""
    if request.channel not in Channel.values:
        raise ValueError(f"unknown channel {request.channel!r}")  # the gate refused it long before
    row = (
        Contact.objects.filter(pk=request.contact_id)
        .annotate(consented=ExpressionWrapper(_consented(request), output_field=BooleanField()))
        .values_list("deleted_at", "consented")
        .first()
    )
    if row is None or row[0] is not None:
        refusal = Refusal(RefusalCode.CONTACT_NOT_FOUND, f"contact {request.contact_id} was deleted before the send")
    elif not row[1]:
        label = Channel(request.channel).label
        refusal = Refusal(RefusalCode.OPT_IN_REQUIRED, f"the contact opted out of {label} before the send")
    else:
        return
    safety_refusal_record(refusal, request, now=now)
    raise SafetyRefusal(refusal.code, refusal.reason)


def safety_refusal_record(refusal: Refusal, request: SendRequest, *, now: datetime | None = None) -> None:
    """Log and count one refusal."""
    level = logging.WARNING if refusal.code in WARNING_CODES else logging.INFO
    logger.log(
        level,
        "safety refused code=%s contactId=%s channel=%s reason=%s",
        refusal.code,
        request.contact_id,
        request.channel,
        refusal.reason,
        extra={"contactId": str(request.contact_id), "channel": request.channel, "reason": refusal.reason,
               "code": str(refusal.code), "event": "gate.refusal"},
    )  # fmt: skip
    channel = request.channel if request.channel in Channel.values else "unknown"
    metrics.emit("MessagesRefused", channel=channel, reason=str(refusal.code))
    day = timezone.localdate(now or timezone.now())
    key = {"day": day, "code": str(refusal.code), "channel": channel}
    if SafetyRefusalCount.objects.filter(**key).update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            SafetyRefusalCount.objects.create(**key, count=1)
    except IntegrityError:  # created by someone else meanwhile
        SafetyRefusalCount.objects.filter(**key).update(count=F("count") + 1)


def safety_refusal_counts(
    *, since: date | None = None, until: date | None = None, channel: str | None = None
) -> dict[str, int]:
    """Refusals per code over a date range (inclusive), every channel unless one is given."""
    rows = SafetyRefusalCount.objects.all()
    if since:
        rows = rows.filter(day__gte=since)
    if until:
        rows = rows.filter(day__lte=until)
    if channel:
        rows = rows.filter(channel=channel)
    return {row["code"]: row["total"] for row in rows.values("code").annotate(total=Sum("count")).order_by("code")}
