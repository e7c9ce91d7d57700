"""Forms: building them (versioned), taking submissions (contact + consent with proof), double opt-in.

Rules kept here:
- what a visitor reads lives in an immutable FormVersion; a change to any of it makes a new version;
- a submission creates the contact or updates the one with that phone (else that email), filling only
  what the contact lacks: a public form never overwrites a known name, phone, email or attribute;
- each box ticked gives that channel's consent (source ``form``) with its proof: the form, the version,
  the exact wording, the time, the source address and the user agent; a box left unticked changes
  nothing (it never withdraws a consent given before);
- a consent applies only to the address typed: WhatsApp and SMS when the contact's phone is the one
  typed, Email when its email is the one typed;
- Email with double opt-in (the default): the consent waits for the link in a confirmation email, the
  one email the gate sends without email consent (messaging.safety, rule 3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from contacts.attributes import attribute_definitions, contact_attributes_clean, contact_set_attributes
from contacts.models import Channel, ConsentSource, Contact
from contacts.services import contact_create, contact_set_opt_in, contact_update
from messaging.ratelimit import Bucket, try_acquire
from messaging.safety import SafetyRefusal
from messaging.services import message_send, send_request_build
from webforms.models import Ask, EmailConfirmation, Form, FormSubmission, FormVersion
from wecare import metrics

logger = logging.getLogger(__name__)

CONTENT_FIELDS = (
    "title",
    "intro",
    "ask_name",
    "ask_phone",
    "ask_email",
    "attributes",
    "consent_whatsapp",
    "consent_sms",
    "consent_email",
    "consent_voice",
    "consent_rcs",
)
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
CONFIRM_SALT = "webforms.email-confirmation"
FORM_TOKEN_SALT = "webforms.form-token"  # noqa: S105 - a signing salt, not a secret
PHONE_CHANNELS = (Channel.WHATSAPP, Channel.SMS, Channel.VOICE, Channel.RCS)
RESERVED_SLUGS = {"confirm"}  # /f/confirm/<token>/ is the double opt-in link


class Outcome:
    """FormSubmissions metric outcomes, and what the public view reports."""

    ACCEPTED = "accepted"
    INVALID = "invalid"
    HONEYPOT = "honeypot"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"


# --- building forms -----------------------------------------------------------------------------


def embed_origins_clean(value: str) -> str:
    """One origin per line (scheme://host[:port]), no paths; returns the lines normalised."""
    origins = []
    for line in (value or "").replace(",", "\n").splitlines():
        origin = line.strip().rstrip("/")
        if not origin:
            continue
        if not ORIGIN.match(origin):
            raise ValidationError(
                {
                    "embed_origins": f"{origin!r} is not an origin: write scheme and host only, e.g. https://www.example.org."
                }
            )
        origins.append(origin.lower())
    return "\n".join(dict.fromkeys(origins))


def form_content_clean(content: dict[str, Any]) -> dict[str, Any]:
    """Check what a version would hold; every problem at once, on its field."""
    errors: dict[str, list[str]] = {}
    cleaned = {field: content.get(field) for field in CONTENT_FIELDS}
    cleaned["title"] = " ".join(str(cleaned["title"] or "").split())
    if not cleaned["title"]:
        errors["title"] = ["A form needs a title."]
    cleaned["intro"] = str(cleaned["intro"] or "").strip()
    for field in ("ask_name", "ask_phone", "ask_email"):
        cleaned[field] = cleaned[field] or Ask.OFF
        if cleaned[field] not in Ask.values:
            errors[field] = [f"Use one of {', '.join(Ask.values)}."]
    for channel in Channel.values:
        cleaned[f"consent_{channel}"] = str(cleaned[f"consent_{channel}"] or "").strip()
    names = list(dict.fromkeys(cleaned["attributes"] or []))
    unknown = sorted(set(names) - set(attribute_definitions()))
    if unknown:
        errors["attributes"] = [f"No such contact attribute: {', '.join(unknown)} (declare it first)."]
    cleaned["attributes"] = names
    if cleaned["ask_phone"] == Ask.OFF and cleaned["ask_email"] == Ask.OFF:
        errors.setdefault(NON_FIELD_ERRORS, []).append("Ask for a phone number or an email address (or both).")
    for channel in PHONE_CHANNELS:
        if cleaned[f"consent_{channel}"] and cleaned["ask_phone"] == Ask.OFF:
            errors.setdefault(f"consent_{channel}", []).append(
                f"{Channel(channel).label} consent needs the phone number: ask for it."
            )
    if cleaned["consent_email"] and cleaned["ask_email"] == Ask.OFF:
        errors.setdefault("consent_email", []).append("Email consent needs the email address: ask for it.")
    if errors:
        raise ValidationError(errors)
    return cleaned


def _version_content(version: FormVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {field: getattr(version, field) for field in CONTENT_FIELDS}


def _new_version(*, form: Form, content: dict[str, Any], actor) -> FormVersion:
    last = form.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = FormVersion.objects.create(form=form, number=last + 1, created_by=_db_user(actor), **content)
    form.current_version = version
    form.save(update_fields=["current_version", "updated_at"])
    return version


def _db_user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


@transaction.atomic
def form_create(
    *,
    slug: str,
    name: str,
    content: dict[str, Any],
    email_double_opt_in: bool = True,
    embed_origins: str = "",
    is_published: bool = True,
    actor,
) -> Form:
    """A new form and its version 1."""
    errors: dict[str, list[str]] = {}
    try:
        content = form_content_clean(content)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        embed_origins = embed_origins_clean(embed_origins)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if slug in RESERVED_SLUGS or Form.objects.filter(slug=slug).exists():
        errors["slug"] = ["Another form already has this address."]
    if errors:
        raise ValidationError(errors)
    form = Form(
        slug=slug,
        name=name or content["title"],
        email_double_opt_in=email_double_opt_in,
        embed_origins=embed_origins,
        is_published=is_published,
        created_by=_db_user(actor),
    )
    form.full_clean(exclude=["current_version"])
    form.save()
    version = _new_version(form=form, content=content, actor=actor)
    audit_record(
        user=_db_user(actor), action="form.create", resource_type="form", resource_id=form.pk,
        details={"slug": form.slug, "version": version.number},
    )  # fmt: skip
    return form


@transaction.atomic
def form_update(*, form: Form, changes: dict[str, Any], actor) -> Form:
    """Change a form. A change to anything a visitor reads makes a new version (submissions keep theirs);
    the rest (name, slug, publishing, double opt-in, embed origins) changes the form itself."""
    locked = Form.objects.select_for_update().get(pk=form.pk)
    errors: dict[str, list[str]] = {}
    current = _version_content(locked.current_version) or {}
    content = None
    if any(field in changes for field in CONTENT_FIELDS):
        try:
            content = form_content_clean({**current, **{k: v for k, v in changes.items() if k in CONTENT_FIELDS}})
        except ValidationError as exc:
            errors.update(exc.message_dict)
    settings_changed: dict[str, Any] = {}
    for field in ("name", "slug", "is_published", "email_double_opt_in", "embed_origins"):
        if field not in changes:
            continue
        value = changes[field]
        if field == "embed_origins":
            try:
                value = embed_origins_clean(value)
            except ValidationError as exc:
                errors.update(exc.message_dict)
                continue
        if field == "slug" and (
            value in RESERVED_SLUGS or Form.objects.filter(slug=value).exclude(pk=locked.pk).exists()
        ):
            errors["slug"] = ["Another form already has this address."]
            continue
        if getattr(locked, field) != value:
            settings_changed[field] = value
    if errors:
        raise ValidationError(errors)
    for field, value in settings_changed.items():
        setattr(locked, field, value)
    if settings_changed:
        locked.full_clean(exclude=["current_version"])
        locked.save()
    version = None
    if content is not None and content != current:
        version = _new_version(form=locked, content=content, actor=actor)
    if settings_changed or version is not None:
        audit_record(
            user=_db_user(actor), action="form.update", resource_type="form", resource_id=locked.pk,
            details={"changed": sorted(settings_changed), "version": version.number if version else None},
        )  # fmt: skip
    locked.refresh_from_db()
    return locked


# --- the public page's protections --------------------------------------------------------------


def form_token(version: FormVersion) -> str:
    """The anti-forgery token a rendered form carries: signed, for this form version, valid for a few hours.

    It stands in for Django's CSRF cookie, which a browser does not send to a form embedded in another
    site (SameSite): a POST must come from a page we served, for this very form. It also names the
    version the visitor read, so the submission keeps that wording even if the form changed meanwhile."""
    return signing.dumps({"form": str(version.form_id), "version": str(version.pk)}, salt=FORM_TOKEN_SALT)


def form_token_version(form: Form, token: str) -> FormVersion | None:
    """The version a valid token for this form names, or None (missing, forged, expired, another form)."""
    try:
        data = signing.loads(token or "", salt=FORM_TOKEN_SALT, max_age=settings.FORMS_TOKEN_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("form") != str(form.pk):
        return None
    return form.versions.filter(pk=data.get("version")).first()


def submission_rate_limit_wait(source_ip: str) -> float:
    """Take one submission from the source address's bucket: 0.0, or the seconds until one is free.

    FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR, shared by every web process (DynamoDB). The address is
    hashed in the key: the table holds no personal data."""
    per_hour = settings.FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR
    digest = hashlib.sha256(f"{settings.SECRET_KEY}|{source_ip}".encode()).hexdigest()[:32]
    return try_acquire(Bucket(key=f"form-submit#{digest}", rate=per_hour / 3600, capacity=float(per_hour)))


def frame_ancestors(form: Form) -> list[str]:
    """The sites that may show this form in a frame: FORMS_EMBED_ORIGINS and the form's own."""
    origins = list(dict.fromkeys([*settings.FORMS_EMBED_ORIGINS, *form.embed_origin_list]))
    return ["'self'", *origins] if origins else ["'none'"]


# --- submissions --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Visitor:
    """Where a submission or a confirmation came from: kept with the consent as proof."""

    ip: str
    user_agent: str

    @property
    def ip_or_none(self) -> str | None:
        return self.ip or None


def _match_contact(*, phone: str | None, email: str | None) -> Contact | None:
    """The contact with this phone, else the one with this email (locked), else None."""
    active = Contact.objects.active().select_for_update()
    if phone and (found := active.filter(phone=phone).first()):
        return found
    if email and (found := active.filter(email=email).first()):
        return found
    return None


def _proof(*, version: FormVersion, channel: str, submission_id, visitor: Visitor, now: datetime) -> dict:
    return {
        "form": str(version.form_id),
        "form_slug": version.form.slug,
        "version": version.number,
        "version_id": str(version.pk),
        "submission": str(submission_id),
        "wording": version.consent_wording()[channel],
        "submitted_at": now.isoformat(),
        "source_ip": visitor.ip,
        "user_agent": visitor.user_agent,
    }


@transaction.atomic
def form_submit(
    *,
    form: Form,
    version: FormVersion,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
    attributes: dict[str, Any] | None = None,
    ticked: list[str],
    visitor: Visitor,
    confirm_url: Any,
    now: datetime | None = None,
) -> FormSubmission:
    """Take one submission (already validated by the public form): the contact, the consents, the proof.

    ``confirm_url(token) -> str`` builds the absolute link of the double opt-in email. Raises
    ValidationError when the contact cannot be created (e.g. its addresses belong to two contacts).
    """
    now = now or timezone.now()
    submission_id = uuid.uuid4()
    wording = version.consent_wording()
    ticked = [channel for channel in Channel.values if channel in ticked and channel in wording]
    attributes = contact_attributes_clean(
        {k: v for k, v in (attributes or {}).items() if v not in (None, "")}
    )  # declared names only, typed
    consents: dict[str, dict] = {}

    def proof(channel: str) -> dict:
        return _proof(version=version, channel=channel, submission_id=submission_id, visitor=visitor, now=now)

    double_opt_in = form.email_double_opt_in
    contact = _match_contact(phone=phone, email=email)
    created = contact is None
    if created:
        immediate = [c for c in ticked if c != Channel.EMAIL or not double_opt_in]
        contact = contact_create(
            name=name,
            phone=phone,
            email=email,
            opt_ins=dict.fromkeys(immediate, True),
            source=ConsentSource.FORM,
            proof={channel: proof(channel) for channel in immediate},
        )
        for channel in immediate:
            consents[channel] = {"wording": wording[channel], "outcome": "given"}
        if attributes:
            contact_set_attributes(contact=contact, values=attributes, actor=None, source=ConsentSource.FORM)
    else:
        _fill_blanks(contact=contact, name=name, phone=phone, email=email, attributes=attributes)
        for channel in ticked:
            if channel == Channel.EMAIL and double_opt_in:
                continue
            address, typed = (contact.email, email) if channel == Channel.EMAIL else (contact.phone, phone)
            if not typed or address != typed:
                consents[channel] = {
                    "wording": wording[channel],
                    "outcome": "not_applied",
                    "detail": "the contact's address for this channel is not the one typed",
                }
                continue
            changed = contact_set_opt_in(
                contact=contact, channel=channel, value=True, source=ConsentSource.FORM, proof=proof(channel)
            )
            consents[channel] = {"wording": wording[channel], "outcome": "given" if changed else "already"}

    pending_email = Channel.EMAIL in ticked and double_opt_in
    if pending_email:
        if not email or contact.email != email:
            consents[Channel.EMAIL] = {
                "wording": wording[Channel.EMAIL],
                "outcome": "not_applied",
                "detail": "the contact's email address is not the one typed",
            }
        elif contact.opt_in_email:
            consents[Channel.EMAIL] = {"wording": wording[Channel.EMAIL], "outcome": "already"}
        else:
            consents[Channel.EMAIL] = {"wording": wording[Channel.EMAIL], "outcome": "pending_confirmation"}

    submission = FormSubmission.objects.create(
        id=submission_id,
        form=form,
        version=version,
        contact=contact,
        contact_created=created,
        data={"name": name, "phone": phone or "", "email": email or "", "attributes": attributes},
        consents=consents,
        source_ip=visitor.ip_or_none,
        user_agent=visitor.user_agent[:512],
        created_at=now,
    )
    if consents.get(Channel.EMAIL, {}).get("outcome") == "pending_confirmation":
        _send_confirmation(submission=submission, contact=contact, confirm_url=confirm_url, now=now)
    metrics.emit("FormSubmissions", outcome=Outcome.ACCEPTED)
    logger.info("form submission form=%s version=%s contactId=%s", form.slug, version.number, contact.pk)
    return submission


def _fill_blanks(*, contact: Contact, name: str, phone: str | None, email: str | None, attributes: dict) -> None:
    """What the contact lacks, from the form; never an overwrite (anyone may type someone's phone)."""
    data: dict[str, Any] = {}
    if name and not contact.name:
        data["name"] = name
    if phone and not contact.phone and not Contact.objects.active().filter(phone=phone).exists():
        data["phone"] = phone
    if email and not contact.email and not Contact.objects.active().filter(email=email).exists():
        data["email"] = email
    if data:
        contact_update(contact=contact, data=data, actor=None, source=ConsentSource.FORM)
    known = contact.attributes or {}
    missing = {key: value for key, value in attributes.items() if value is not None and key not in known}
    if missing:
        contact_set_attributes(contact=contact, values=missing, actor=None, source=ConsentSource.FORM)


def confirmation_token(pending: EmailConfirmation) -> str:
    return signing.dumps(str(pending.pk), salt=CONFIRM_SALT)


def _confirmation_email(*, title: str, link: str) -> tuple[str, str]:
    subject = f"Please confirm your email: {title}"[:200]
    text = (
        f"You asked to receive emails from us through the form \u201c{title}\u201d.\n\n"
        f"Please confirm by opening this link within {settings.FORMS_CONFIRM_LINK_HOURS} hours:\n{link}\n\n"
        "If you did not ask for this, ignore this email: nothing will be sent to you."
    )
    return subject, text


def _send_confirmation(*, submission: FormSubmission, contact: Contact, confirm_url, now: datetime) -> None:
    """The double opt-in email: through the gate like every send (its one exception to rule 3)."""
    pending = EmailConfirmation(submission=submission, contact=contact, email=contact.email, created_at=now)
    subject, text = _confirmation_email(title=submission.version.title, link=confirm_url(confirmation_token(pending)))
    pending.subject, pending.text = subject, text
    pending.save(force_insert=True)
    request = dataclasses.replace(
        send_request_build(contact_id=contact.pk, channel=Channel.EMAIL, subject=subject, text=text, contact=contact),
        confirms_email_request=pending.pk,
    )
    entry = submission.consents[Channel.EMAIL]
    try:
        message_send(request, audit=False, now=now)
    except SafetyRefusal as exc:
        entry["detail"] = f"confirmation email not sent: {exc.reason}"
    else:
        pending.emailed_at = now
        pending.save(update_fields=["emailed_at"])
        entry["detail"] = "confirmation email sent"
    submission.save(update_fields=["consents"])


# --- double opt-in confirmation -----------------------------------------------------------------


class ConfirmationInvalid(Exception):
    """The link cannot confirm anything; ``reason`` says why, for the visitor."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def confirmation_from_token(token: str) -> EmailConfirmation:
    max_age = timedelta(hours=settings.FORMS_CONFIRM_LINK_HOURS)
    try:
        pending_id = signing.loads(token or "", salt=CONFIRM_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise ConfirmationInvalid("This confirmation link has expired. Please fill in the form again.") from None
    except signing.BadSignature:
        raise ConfirmationInvalid("This confirmation link is not valid.") from None
    pending = EmailConfirmation.objects.select_related("submission__version__form", "contact").filter(pk=pending_id)
    found = pending.first()
    if found is None:
        raise ConfirmationInvalid("This confirmation link is not valid.")
    return found


@transaction.atomic
def email_confirmation_confirm(*, pending: EmailConfirmation, visitor: Visitor, now: datetime | None = None) -> bool:
    """Follow the link: the email consent becomes true, with the form's proof and the confirmation's.

    Returns False when it was confirmed already. Raises ConfirmationInvalid when the contact is gone or
    its address is no longer the one that asked."""
    now = now or timezone.now()
    locked = EmailConfirmation.objects.select_for_update().get(pk=pending.pk)
    if locked.confirmed_at is not None:
        return False
    contact = Contact.objects.active().filter(pk=locked.contact_id).first()
    if contact is None or contact.email != locked.email:
        raise ConfirmationInvalid("This email address is no longer on file with us; nothing was changed.")
    submission = locked.submission
    version = submission.version
    proof = _proof(
        version=version,
        channel=Channel.EMAIL,
        submission_id=submission.pk,
        visitor=Visitor(ip=submission.source_ip or "", user_agent=submission.user_agent),
        now=submission.created_at,
    )
    proof["double_opt_in"] = {
        "confirmed_at": now.isoformat(),
        "source_ip": visitor.ip,
        "user_agent": visitor.user_agent,
        "confirmation": str(locked.pk),
    }
    locked.confirmed_at = now
    locked.confirmed_ip = visitor.ip_or_none
    locked.confirmed_user_agent = visitor.user_agent[:512]
    locked.save(update_fields=["confirmed_at", "confirmed_ip", "confirmed_user_agent"])
    contact_set_opt_in(contact=contact, channel=Channel.EMAIL, value=True, source=ConsentSource.FORM, proof=proof)
    consents = dict(submission.consents)
    consents[Channel.EMAIL] = {**consents.get(Channel.EMAIL, {}), "outcome": "given", "confirmed_at": now.isoformat()}
    submission.consents = consents
    submission.save(update_fields=["consents"])
    return True
