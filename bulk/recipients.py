"""Who a bulk job is for: explicit contact ids, a contact filter, a saved segment, a tag, or an uploaded
CSV of phones/emails. Segments and tags are evaluated now, when the job is created (dynamic).

Each source resolves to an ordered list of candidates, one per contact (duplicates dropped and
counted). An input that names nobody we know (an unknown id, a phone or email no active contact
has) stays a candidate without a contact, so the pre-flight shows it as CONTACT_NOT_FOUND; a value
that is not a phone number or email at all is ADDRESS_INVALID. Malformed requests (not a UUID, a
CSV with no usable column) raise BulkInputError: the operator gets a clear error, nothing is stored.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from audiences.models import Segment
from audiences.selectors import segment_contacts
from audiences.spec import spec_clean
from bulk.errors import BulkInputError
from bulk.models import ADDRESS_INVALID
from contacts.attributes import tag_name_clean
from contacts.models import Channel, Contact, Tag
from contacts.phones import normalize_phone
from contacts.selectors import contact_search

CONTACT_NOT_FOUND = "CONTACT_NOT_FOUND"  # the safety gate's code for a missing or deleted contact

PHONE_HEADERS = {"phone", "phone_number", "phonenumber", "mobile", "msisdn", "whatsapp", "number"}
EMAIL_HEADERS = {"email", "e-mail", "email_address", "mail"}
LOOKUP_BATCH = 1000


@dataclass
class Candidate:
    contact: Contact | None
    address: str
    error_code: str = ""
    error_details: str = ""


@dataclass
class Resolution:
    candidates: list[Candidate] = field(default_factory=list)
    duplicates: int = 0
    source_details: dict = field(default_factory=dict)


def _max_recipients() -> int:
    return settings.BULK_MAX_RECIPIENTS


def _check_size(count: int) -> None:
    if count > _max_recipients():
        raise BulkInputError(
            f"A bulk job may have at most {_max_recipients()} recipients; this request names {count}. "
            "Split it into several jobs.",
            code="TOO_MANY_RECIPIENTS",
        )


def _contact_address(contact: Contact, channel: str) -> str:
    return (contact.email if channel == Channel.EMAIL else contact.phone) or ""


def _dedupe(candidates: Iterable[Candidate]) -> tuple[list[Candidate], int]:
    seen_contacts: set = set()
    seen_unmatched: set[str] = set()
    kept, duplicates = [], 0
    for candidate in candidates:
        key = candidate.contact.pk if candidate.contact is not None else None
        if key is not None:
            if key in seen_contacts:
                duplicates += 1
                continue
            seen_contacts.add(key)
        else:
            marker = candidate.address.strip().lower()
            if marker in seen_unmatched:
                duplicates += 1
                continue
            seen_unmatched.add(marker)
        kept.append(candidate)
    return kept, duplicates


def resolve_contact_ids(contact_ids: list, *, channel: str) -> Resolution:
    if not isinstance(contact_ids, list) or not contact_ids:
        raise BulkInputError("contactIds must be a non-empty list of contact ids.", code="INVALID_RECIPIENTS")
    _check_size(len(contact_ids))
    parsed: list[uuid.UUID] = []
    for raw in contact_ids:
        try:
            parsed.append(uuid.UUID(str(raw)))
        except ValueError:
            raise BulkInputError(f"{raw!r} is not a contact id (a UUID).", code="INVALID_RECIPIENTS") from None
    # Deleted contacts are loaded too: the gate refuses them (CONTACT_NOT_FOUND) and the pre-flight says so.
    found: dict[uuid.UUID, Contact] = {}
    for start in range(0, len(parsed), LOOKUP_BATCH):
        batch = parsed[start : start + LOOKUP_BATCH]
        found.update({c.pk: c for c in Contact.objects.filter(pk__in=batch)})
    candidates = []
    for contact_id in parsed:
        contact = found.get(contact_id)
        if contact is None:
            candidates.append(Candidate(None, str(contact_id), CONTACT_NOT_FOUND, "No contact has this id."))
        else:
            candidates.append(Candidate(contact, _contact_address(contact, channel)))
    kept, duplicates = _dedupe(candidates)
    return Resolution(kept, duplicates, {"contactIds": len(contact_ids)})


def resolve_filter(spec: dict, *, channel: str) -> Resolution:
    """``{"search": "kumar", "optIn": true}``: active contacts matching the search, opted in (or not)."""
    if not isinstance(spec, dict):
        raise BulkInputError('filter must be an object such as {"search": "...", "optIn": true}.')
    unknown = set(spec) - {"search", "optIn"}
    if unknown:
        raise BulkInputError(
            f"Unknown filter field(s): {', '.join(sorted(unknown))}. Use search and optIn.", code="INVALID_FILTER"
        )
    search = spec.get("search", "")
    if not isinstance(search, str):
        raise BulkInputError("filter.search must be text.", code="INVALID_FILTER")
    opt_in = spec.get("optIn", True)
    if opt_in is not None and not isinstance(opt_in, bool):
        raise BulkInputError("filter.optIn must be true, false or null.", code="INVALID_FILTER")
    queryset = contact_search(query=search.strip())
    if opt_in is not None:
        queryset = queryset.filter(**{f"opt_in_{channel}": opt_in})
    queryset = queryset.order_by("created_at", "id")
    count = queryset.count()
    if count == 0:
        raise BulkInputError("The filter matches no contacts.", code="NO_RECIPIENTS")
    _check_size(count)
    candidates = [Candidate(contact, _contact_address(contact, channel)) for contact in queryset.iterator()]
    return Resolution(candidates, 0, {"filter": {"search": search, "optIn": opt_in}, "matched": count})


def _resolve_members(queryset, *, channel: str, details: dict, empty: str) -> Resolution:
    queryset = queryset.order_by("created_at", "id")
    count = queryset.count()
    if count == 0:
        raise BulkInputError(empty, code="NO_RECIPIENTS")
    _check_size(count)
    candidates = [Candidate(contact, _contact_address(contact, channel)) for contact in queryset.iterator()]
    return Resolution(candidates, 0, {**details, "matched": count})


def resolve_segment(segment_id, *, channel: str) -> Resolution:
    """The members of a saved segment, as of now; the gate then judges each (the pre-flight)."""
    try:
        segment = Segment.objects.filter(pk=uuid.UUID(str(segment_id))).first()
    except ValueError:
        segment = None
    if segment is None:
        raise BulkInputError(f"No segment {segment_id}.", code="INVALID_SEGMENT")
    try:
        spec = spec_clean(segment.spec)  # an attribute may have been removed since it was saved
    except ValidationError as exc:
        problems = " ".join(m for ms in exc.message_dict.values() for m in ms)
        raise BulkInputError(
            f"Segment {segment.name!r} no longer applies: {problems}", code="INVALID_SEGMENT"
        ) from None
    return _resolve_members(
        segment_contacts(spec),
        channel=channel,
        details={"segment": {"id": str(segment.pk), "name": segment.name, "spec": spec}},
        empty=f"Segment {segment.name!r} has no contacts right now.",
    )


def resolve_tag(name, *, channel: str) -> Resolution:
    """The active contacts with this tag."""
    try:
        name = tag_name_clean(name)
    except ValidationError as exc:
        raise BulkInputError(" ".join(exc.messages), code="INVALID_TAG") from None
    tag = Tag.objects.filter(name=name).first()
    if tag is None:
        raise BulkInputError(f"No tag {name!r}.", code="INVALID_TAG")
    return _resolve_members(
        Contact.objects.active().filter(tags=tag),
        channel=channel,
        details={"tag": name},
        empty=f"No contact has the tag {name!r}.",
    )


def _read_csv(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkInputError("The CSV file must be UTF-8 text.", code="INVALID_CSV") from None
    try:
        sample = text[:4096]
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    try:
        return [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise BulkInputError(f"The CSV file cannot be read: {exc}.", code="INVALID_CSV") from None


def _csv_values(rows: list[list[str]], channel: str) -> list[tuple[int, str]]:
    """(line number, value) per data row: the email column for email jobs, else the phone column."""
    if not rows:
        raise BulkInputError("The CSV file has no rows.", code="INVALID_CSV")
    header = [cell.strip().lower() for cell in rows[0]]
    phone_col = next((i for i, name in enumerate(header) if name in PHONE_HEADERS), None)
    email_col = next((i for i, name in enumerate(header) if name in EMAIL_HEADERS), None)
    if phone_col is None and email_col is None:
        # No header: one value per row in the first column, phone or email.
        return [(number, row[0].strip()) for number, row in enumerate(rows, start=1)]
    wanted = [email_col, phone_col] if channel == Channel.EMAIL else [phone_col, email_col]
    values = []
    for number, row in enumerate(rows[1:], start=2):
        value = ""
        for col in wanted:
            if col is not None and col < len(row) and row[col].strip():
                value = row[col].strip()
                break
        if value:
            values.append((number, value))
    return values


def resolve_csv(data: bytes, *, channel: str, filename: str = "") -> Resolution:
    """Rows of phones and/or emails (a header row names the columns: phone, email)."""
    values = _csv_values(_read_csv(data), channel)
    if not values:
        raise BulkInputError("The CSV file has no phone numbers or email addresses.", code="INVALID_CSV")
    _check_size(len(values))

    parsed: list[tuple[str, str, str]] = []  # (raw, kind, normalised) — kind phone|email|invalid
    for line, raw in values:
        if "@" in raw:
            try:
                validate_email(raw)
                parsed.append((raw, "email", raw.lower()))
            except ValidationError:
                parsed.append((raw, "invalid", f"line {line}: {raw!r} is not an email address."))
        else:
            try:
                parsed.append((raw, "phone", normalize_phone(raw)))
            except ValidationError as exc:
                parsed.append((raw, "invalid", f"line {line}: {' '.join(exc.messages)}"))

    phones = [norm for _, kind, norm in parsed if kind == "phone"]
    emails = [norm for _, kind, norm in parsed if kind == "email"]
    by_phone: dict[str, Contact] = {}
    by_email: dict[str, Contact] = {}
    for start in range(0, len(phones), LOOKUP_BATCH):
        by_phone.update(
            {c.phone: c for c in Contact.objects.active().filter(phone__in=phones[start : start + LOOKUP_BATCH])}
        )
    for start in range(0, len(emails), LOOKUP_BATCH):
        by_email.update(
            {
                c.email.lower(): c
                for c in Contact.objects.active().filter(email__in=emails[start : start + LOOKUP_BATCH])
            }
        )

    candidates = []
    for raw, kind, norm in parsed:
        if kind == "invalid":
            candidates.append(Candidate(None, raw, ADDRESS_INVALID, norm))
            continue
        contact = (by_phone if kind == "phone" else by_email).get(norm)
        if contact is None:
            candidates.append(Candidate(None, norm, CONTACT_NOT_FOUND, f"No active contact has {kind} {norm}."))
        else:
            candidates.append(Candidate(contact, _contact_address(contact, channel) or norm))
    kept, duplicates = _dedupe(candidates)
    return Resolution(kept, duplicates, {"csv": {"filename": filename[:255], "rows": len(values)}})
