"""Changing contacts and their consent. Every writer (API, admin, import, pages, inbound) calls these.

Rules kept here:
- opt-ins are False unless someone sets one explicitly, and then only with a real boolean;
- every opt-in change is written to the immutable consent history (ConsentEvent) and the audit log;
- a contact has a phone (E.164) or an email, each unique among contacts that are not deleted;
- delete is soft; an Admin may restore, unless another contact took the phone or email meanwhile.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import audit_record
from contacts.models import Channel, ConsentEvent, ConsentSource, Contact
from contacts.phones import normalize_phone

OPT_IN_FIELDS = {f"opt_in_{channel}": channel for channel in Channel.values}
UPDATABLE_FIELDS = ("name", "phone", "email", *OPT_IN_FIELDS)

PHONE_TAKEN = "Another contact already has this phone number."
EMAIL_TAKEN = "Another contact already has this email address."
PHONE_OR_EMAIL = "A contact needs a phone number or an email address."
WHATSAPP_USER_ID_TAKEN = "Another contact already has this WhatsApp user id."

# Constraint name → (field, message): a race lost to the database reads like the check we ran.
_CONSTRAINT_ERRORS = {
    "contact_phone_unique_when_active": ("phone", PHONE_TAKEN),
    "contact_email_unique_when_active": ("email", EMAIL_TAKEN),
    "contact_has_phone_or_email": (NON_FIELD_ERRORS, PHONE_OR_EMAIL),
    "contact_phone_is_e164": ("phone", "The phone number must be in E.164 form, e.g. +919876543210."),
    "contact_whatsapp_user_id_unique_when_active": (NON_FIELD_ERRORS, WHATSAPP_USER_ID_TAKEN),
}


def _actor_label(actor) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.email or actor.get_username()
    return "system"


def _db_user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _check_source(source: str) -> str:
    if source not in ConsentSource.values:
        raise ValidationError(
            {"source": f"Unknown consent source {source!r}: use one of {', '.join(ConsentSource.values)}."}
        )
    return str(source)  # the plain value, also for ConsentSource members


def _check_channel(channel: str) -> None:
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}: use one of {', '.join(Channel.values)}."})


def _check_bool(field: str, value: Any) -> bool:
    # bool is checked by type: 1, "yes" and "true" are refused, so nobody is opted in by accident.
    if type(value) is not bool:
        raise ValidationError({field: f"Must be true or false, not {value!r}."}, code="invalid_boolean")
    return value


def _clean_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({"name": f"The name must be text, not {value!r}."})
    value = " ".join(value.split())
    if len(value) > Contact._meta.get_field("name").max_length:
        raise ValidationError({"name": "The name is longer than 200 characters."})
    return value


def _clean_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError({"email": f"The email address must be text, not {value!r}."})
    value = value.strip().lower()
    if not value:
        return None
    try:
        validate_email(value)
    except ValidationError:
        raise ValidationError({"email": f"{value!r} is not a valid email address."}) from None
    return value


def _clean_phone(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return normalize_phone(value)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from None


def contact_clean(
    *,
    name: Any = "",
    phone: Any = None,
    email: Any = None,
    exclude: Contact | None = None,
    whatsapp_user_id: str | None = None,
) -> dict[str, Any]:
    """Validate and normalise a contact's identity fields; every problem is reported at once.

    Returns ``{"name", "phone", "email"}`` normalised. Raises ValidationError with one message per
    field (uniqueness is checked among contacts that are not deleted, ``exclude`` aside).
    """
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    checks = (("name", _clean_name, name), ("phone", _clean_phone, phone), ("email", _clean_email, email))
    for field, clean, value in checks:
        try:
            cleaned[field] = clean(value)
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.message_dict.get(field, exc.messages))
    if errors:
        raise ValidationError(errors)
    if not cleaned["phone"] and not cleaned["email"]:
        if whatsapp_user_id:
            # Only inbound messages create such contacts (a sender who hides their number).
            taken = Contact.objects.active().filter(whatsapp_user_id=whatsapp_user_id)
            if exclude is not None:
                taken = taken.exclude(pk=exclude.pk)
            if taken.exists():
                raise ValidationError({NON_FIELD_ERRORS: [WHATSAPP_USER_ID_TAKEN]}, code="unique")
            return cleaned
        raise ValidationError({NON_FIELD_ERRORS: [PHONE_OR_EMAIL]}, code="phone_or_email")
    # One query for both: each side is served by its partial unique index.
    taken = Q()
    if cleaned["phone"]:
        taken |= Q(phone=cleaned["phone"])
    if cleaned["email"]:
        taken |= Q(email=cleaned["email"])
    others = Contact.objects.active().filter(taken).order_by()
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    for phone, email in others.values_list("phone", "email")[:2]:
        if cleaned["phone"] and phone == cleaned["phone"]:
            errors["phone"] = [PHONE_TAKEN]
        if cleaned["email"] and email == cleaned["email"]:
            errors["email"] = [EMAIL_TAKEN]
    if errors:
        raise ValidationError(errors, code="unique")
    return cleaned


def _save(contact: Contact, **kwargs) -> None:
    """Save; a constraint the database enforces becomes a ValidationError.

    Call it only inside ``transaction.atomic`` (every service here is): the ValidationError then
    leaves that block, which rolls back to its savepoint, so the failed statement costs nothing else.
    """
    try:
        contact.save(**kwargs)
    except IntegrityError as exc:
        text = str(exc)
        for constraint, (field, message) in _CONSTRAINT_ERRORS.items():
            if constraint in text:
                raise ValidationError({field: [message]}, code="constraint") from exc
        raise


def _consent_event(
    *, contact: Contact, channel: str, old: bool | None, new: bool, actor, source: str, proof: dict | None = None
) -> ConsentEvent:
    return ConsentEvent.objects.create(
        contact=contact,
        channel=channel,
        old_value=old,
        new_value=new,
        changed_by=_db_user(actor),
        actor=_actor_label(actor),
        source=source,
        proof=proof or {},
    )


def _audit_consent(*, contact: Contact, channel: str, old: bool | None, new: bool, actor, source: str) -> None:
    audit_record(
        user=_db_user(actor),
        action="contact.consent",
        resource_type="contact",
        resource_id=contact.pk,
        details={"channel": channel, "old": old, "new": new, "source": source},
    )


@transaction.atomic
def contact_create(
    *,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
    opt_ins: dict[str, bool] | None = None,
    actor=None,
    source: str,
    whatsapp_user_id: str | None = None,
    proof: dict | None = None,
) -> Contact:
    """Create a contact. Opt-ins are False unless given in ``opt_ins`` ({"whatsapp": True, ...}).

    Each opt-in given explicitly is written to the consent history with old value None (and
    ``proof``, {channel: evidence}, where the source keeps some).
    """
    source = _check_source(source)
    opt_ins = dict(opt_ins or {})
    errors: dict[str, list[str]] = {}
    for channel, value in opt_ins.items():
        if channel not in Channel.values:
            errors.setdefault("opt_ins", []).append(
                f"Unknown channel {channel!r}: use one of {', '.join(Channel.values)}."
            )
            continue
        try:
            _check_bool(f"opt_in_{channel}", value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    try:
        cleaned = contact_clean(name=name, phone=phone, email=email, whatsapp_user_id=whatsapp_user_id)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)

    contact = Contact(
        **cleaned,
        whatsapp_user_id=whatsapp_user_id or None,
        **{f"opt_in_{channel}": value for channel, value in opt_ins.items()},
    )
    _save(contact, force_insert=True)
    audit_record(
        user=_db_user(actor),
        action="contact.create",
        resource_type="contact",
        resource_id=contact.pk,
        details={"source": source, "fields": sorted(k for k, v in cleaned.items() if v), "opt_ins": opt_ins},
    )
    for channel, value in opt_ins.items():
        _consent_event(
            contact=contact,
            channel=channel,
            old=None,
            new=value,
            actor=actor,
            source=source,
            proof=(proof or {}).get(channel),
        )
        _audit_consent(contact=contact, channel=channel, old=None, new=value, actor=actor, source=source)
    return contact


def _copy_into(target: Contact, source: Contact) -> None:
    for field in Contact._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


@transaction.atomic
def contact_update(*, contact: Contact, data: dict[str, Any], actor, source: str) -> Contact:
    """Change name, phone, email and/or opt-ins. Only the keys present in ``data`` change.

    Keys are model field names: name, phone, email, opt_in_<channel> (whatsapp, sms, email, voice, rcs).
    Opt-in values must be real booleans; each change goes through ``contact_set_opt_in``.
    The contact passed in is updated in place and returned.
    """
    source = _check_source(source)
    unknown = sorted(set(data) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {NON_FIELD_ERRORS: [f"Unknown field(s) {', '.join(unknown)}: use {', '.join(UPDATABLE_FIELDS)}."]}
        )
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    if locked.is_deleted:
        raise ValidationError({NON_FIELD_ERRORS: ["This contact is deleted: an Admin must restore it first."]})

    errors: dict[str, list[str]] = {}
    opt_in_changes: dict[str, bool] = {}
    for field, channel in OPT_IN_FIELDS.items():
        if field in data:
            try:
                opt_in_changes[channel] = _check_bool(field, data[field])
            except ValidationError as exc:
                errors.update(exc.message_dict)
    identity = {
        "name": data.get("name", locked.name),
        "phone": data.get("phone", locked.phone),
        "email": data.get("email", locked.email),
    }
    try:
        cleaned = contact_clean(**identity, exclude=locked)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)

    changes = {
        field: [getattr(locked, field), value] for field, value in cleaned.items() if getattr(locked, field) != value
    }
    if changes:
        for field, (_old, new) in changes.items():
            setattr(locked, field, new)
        _save(locked, update_fields=[*changes, "updated_at"])
        audit_record(
            user=_db_user(actor),
            action="contact.update",
            resource_type="contact",
            resource_id=locked.pk,
            details={"source": source, "changes": changes},
        )
    for channel, value in opt_in_changes.items():
        contact_set_opt_in(contact=locked, channel=channel, value=value, actor=actor, source=source)
    _copy_into(contact, locked)
    return contact


@transaction.atomic
def contact_set_opt_in(
    *, contact: Contact, channel: str, value: bool, actor=None, source: str, proof: dict | None = None
) -> bool:
    """Set one channel's opt-in. Writes the consent history (with ``proof``, the evidence a source
    keeps) and audit only on a change.

    The row is locked while it is read and written, so two concurrent changes are both recorded
    with the right old value. Returns whether the value changed.
    """
    source = _check_source(source)
    _check_channel(channel)
    field = f"opt_in_{channel}"
    _check_bool(field, value)
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    old = getattr(locked, field)
    if old == value:
        setattr(contact, field, old)
        return False
    setattr(locked, field, value)
    locked.save(update_fields=[field, "updated_at"])
    _consent_event(contact=locked, channel=channel, old=old, new=value, actor=actor, source=source, proof=proof)
    _audit_consent(contact=locked, channel=channel, old=old, new=value, actor=actor, source=source)
    setattr(contact, field, value)
    contact.updated_at = locked.updated_at
    return True


@transaction.atomic
def contact_soft_delete(*, contact: Contact, actor) -> Contact:
    """Mark the contact deleted: it leaves lists, search and sends; its history stays."""
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    if locked.is_deleted:
        raise ValidationError({NON_FIELD_ERRORS: ["This contact is already deleted."]}, code="already_deleted")
    locked.deleted_at = timezone.now()
    locked.save(update_fields=["deleted_at", "updated_at"])
    audit_record(user=_db_user(actor), action="contact.delete", resource_type="contact", resource_id=locked.pk)
    _copy_into(contact, locked)
    return contact


@transaction.atomic
def contact_restore(*, contact: Contact, actor) -> Contact:
    """Bring a deleted contact back, unless another contact now has its phone or email."""
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    if not locked.is_deleted:
        raise ValidationError({NON_FIELD_ERRORS: ["This contact is not deleted."]}, code="not_deleted")
    others = Contact.objects.active().exclude(pk=locked.pk)
    errors: dict[str, list[str]] = {}
    if locked.phone:
        holder = others.filter(phone=locked.phone).first()
        if holder is not None:
            errors["phone"] = [
                f"Cannot restore: contact {holder.pk} now has the phone number {locked.phone}. "
                "Change or delete that contact first."
            ]
    if locked.email:
        holder = others.filter(email=locked.email).first()
        if holder is not None:
            errors["email"] = [
                f"Cannot restore: contact {holder.pk} now has the email address {locked.email}. "
                "Change or delete that contact first."
            ]
    if errors:
        raise ValidationError(errors, code="restore_conflict")
    locked.deleted_at = None
    _save(locked, update_fields=["deleted_at", "updated_at"])
    audit_record(user=_db_user(actor), action="contact.restore", resource_type="contact", resource_id=locked.pk)
    _copy_into(contact, locked)
    return contact


def contact_export_includes_deleted(*, user, asked: bool) -> bool:
    """An export holds deleted contacts only when an Admin asks for them (they were deleted for a reason)."""
    return bool(asked and getattr(user, "role", None) == "Admin")
