"""Contacts CSV import, batched: the one service the page, the admin (through ImportJob and its
Celery task) and the ``import_contacts`` command run.

The rules are those of contacts.services, applied to thousands of rows at once:
- a row without contactId creates a contact; a row with one updates that (active) contact;
- an empty cell means "not given": opt-ins stay false (or unchanged), fields stay unchanged;
- opt-in cells are ``true`` or ``false`` (any case); anything else rejects the row;
- a phone or email already held by another active contact, or by an earlier row of the file,
  rejects the row (a duplicate within the file is reported, never imported twice);
- every bad row is reported with its number, line, column and reason; the good rows are kept;
- every opt-in given on a new contact, and every opt-in changed on an existing one, is written to
  the consent history (source ``import``), in bulk.

Why batches: one database round trip per row capped imports at ~150 rows/s. Here each batch of
rows costs one query to find the contacts named by contactId, one to find every active contact
holding one of the batch's phones or emails, one bulk insert, one bulk update and one bulk insert
of consent events. If the database still refuses a batch (another writer took a phone between our
check and our insert), that batch is replayed row by row in savepoints so that only the row that
lost the race is rejected.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, ForeignKey, JSONField, UUIDField
from django.utils import timezone
from psycopg.types.json import Jsonb

from accounts.services import audit_record
from contacts.attributes import (
    attribute_definitions,
    attributes_merge,
    contact_attributes_clean,
    contacts_tag_ids_sync,
    tag_names_clean,
    tags_get_or_create,
)
from contacts.models import Channel, ConsentEvent, ConsentSource, Contact, ContactTag, Tag
from contacts.phones import parse_phone, phone_search_forms
from contacts.resources import (
    ATTRIBUTE_PREFIX,
    EXPORT_ONLY_COLUMNS,
    IMPORT_COLUMNS,
    OPT_IN_COLUMNS,
    TAGS_COLUMN,
    ImportFileError,
    check_headers,
)
from contacts.search import normalize_text
from contacts.services import EMAIL_TAKEN, PHONE_OR_EMAIL, PHONE_TAKEN
from wecare.spreadsheet import FORMULA_TRIGGERS

BATCH_SIZE = 2000
CHANNEL_OF_FIELD = {f"opt_in_{c}": c for c in Channel.values}
CHANNEL_FIELDS = tuple(CHANNEL_OF_FIELD)
ROW = ""  # the "column" of an error about the row as a whole
NAME_MAX = Contact._meta.get_field("name").max_length
_NON_DIGITS = str.maketrans("", "", "+-() ./")
# What an update reads of an existing contact; the two JSON columns last (see _existing_contacts).
_EXISTING_COLUMNS = ("name", "phone", "email", "whatsapp_user_id", *CHANNEL_FIELDS, "attributes", "tag_ids")
FIELD_OF_COLUMN = {"name": "name", "phone": "phone", "email": "email", **OPT_IN_COLUMNS}


# --- Reading the file ---------------------------------------------------------------------------


def check_size(size: int, *, name: str = "The file") -> None:
    """Refuse a file over CONTACTS_IMPORT_MAX_BYTES before a byte of it is read into memory."""
    limit = settings.CONTACTS_IMPORT_MAX_BYTES
    if size > limit:
        raise ImportFileError(
            f"{name} is {size:,} bytes; the limit is {limit:,} bytes ({limit / 1024 / 1024:.0f} MB). "
            "Split it into smaller files."
        )


def decode(data: bytes, *, name: str = "The file") -> str:
    """Text of a CSV file as people save it: UTF-8 with or without BOM, or UTF-16 (Excel's
    "Unicode text"), with or without BOM. Anything else is refused with a clear error."""
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, data = "utf-8", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # the BOM says which byte order
    elif len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0:4:2] != b"\x00\x00":
        encoding = "utf-16-le"  # ASCII header letters with a zero byte after each
    elif len(data) >= 4 and data[0:4:2] == b"\x00\x00" and data[1:4:2] != b"\x00\x00":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{name} is not a CSV text file we can read ({encoding}: {exc.reason} at byte {exc.start}): "
            "save it as CSV UTF-8 (or Unicode text) and try again."
        ) from None
    if "\x00" in text:
        raise ImportFileError(f"{name} is not a CSV text file (it holds binary data): save it as CSV UTF-8.")
    return text


def sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or tab: whichever the header line holds most of (our column names hold none)."""
    header = text.split("\n", 1)[0]
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvRows:
    """The header and an iterator of (row number, line number, cells, problem) of a decoded file."""

    headers: list[str]
    delimiter: str
    text: str

    def _reader(self):
        return csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter, strict=False)

    def __iter__(self) -> Iterator[tuple[int, int, list[str], str]]:
        reader = self._reader()
        next(reader, None)
        width = len(self.headers)
        number = 0
        try:
            for cells in reader:
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                number += 1
                problem = ""
                if len(cells) > width:
                    problem = (
                        f"The row has {len(cells)} cells but the header names {width} columns "
                        f"(a {'comma' if self.delimiter == ',' else 'separator'} inside a value must be quoted)."
                    )
                    cells = cells[:width]
                elif len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                yield number, reader.line_num, cells, problem
        except csv.Error as exc:
            raise ImportFileError(f"The file is not valid CSV at line {reader.line_num}: {exc}.") from None

    def count(self) -> int:
        return sum(1 for _ in self)


def open_csv(data: bytes, *, name: str = "The file") -> CsvRows:
    """Check size, encoding, separator and header; ImportFileError (nothing written) otherwise."""
    check_size(len(data), name=name)
    text = decode(data, name=name)
    if not text.strip():
        raise ImportFileError(f"{name} is empty: the first line must name the columns.")
    delimiter = sniff_delimiter(text)
    rows = CsvRows(headers=[], delimiter=delimiter, text=text)
    try:
        headers = next(rows._reader(), None)
    except csv.Error as exc:
        raise ImportFileError(f"{name} is not valid CSV: {exc}.") from None
    if not headers:
        raise ImportFileError(f"{name} is empty: the first line must name the columns.")
    rows.headers = [h.strip() for h in headers]
    try:
        check_headers(rows.headers)
    except ImportFileError as exc:
        if len(rows.headers) == 1 and len(rows.headers[0]) > 40:
            raise ImportFileError(
                f"{name} does not look like a CSV file: its first line is not a header row "
                f"({', '.join(IMPORT_COLUMNS)}) separated by commas, semicolons or tabs."
            ) from None
        raise exc
    return rows


# --- Validating rows ----------------------------------------------------------------------------


@dataclass
class BadRow:
    number: int
    line: int
    errors: list[tuple[str, str]]  # (column, message); column "" for the row as a whole

    @property
    def reason(self) -> str:
        return "; ".join(f"{column}: {message}" if column else message for column, message in self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "line": self.line, "errors": [list(e) for e in self.errors]}


@dataclass
class _Row:
    number: int
    line: int
    contact_id: uuid.UUID | None
    data: dict[str, Any]  # model field → value, only what the row gives
    search_phone: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # added to the contact's tags
    attributes: dict[str, Any] = field(default_factory=dict)  # cleaned; None removes one


def _strict_bool(text: str) -> bool | None:
    value = text.strip().lower()
    if value == "":
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError(f"{text!r} is not a boolean: write true or false, or leave the cell empty.")


def _phone(text: str, region: str) -> tuple[str, list[str]]:
    """(E.164, digit forms for search) of a phone, parsed once; ValidationError if invalid."""
    number = parse_phone(text, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    forms = [e164[1:]]
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    national = "".join(ch for ch in national if ch.isdigit())
    if national and national not in forms[0]:
        forms.append(national)
    return e164, forms


def _unescape(text: str) -> str:
    """Undo the export's formula guard ("'=…" → "=…"), so an export imports back unchanged."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_TRIGGERS:
        return text[1:]
    return text


def _parse_row(
    number: int, line: int, cells: list[str], index: dict[str, int], region: str, definitions: dict | None = None
):
    """A _Row, or a BadRow listing every problem of the row's own cells."""
    errors: list[tuple[str, str]] = []
    data: dict[str, Any] = {}
    contact_id = None
    search_phone: list[str] = []

    def cell(column: str) -> str:
        position = index.get(column)
        return "" if position is None else cells[position].strip()

    raw_id = cell("contactId")
    if raw_id:
        try:
            contact_id = uuid.UUID(raw_id)
        except ValueError:
            errors.append(("contactId", f"{raw_id!r} is not a contactId (a UUID)."))
    name = _unescape(cell("name"))
    if name:
        name = " ".join(name.split())
        if len(name) > NAME_MAX:
            errors.append(("name", f"The name is longer than {NAME_MAX} characters."))
        data["name"] = name
    phone = cell("phone")
    if phone:
        try:
            data["phone"], search_phone = _phone(phone, region)
        except ValidationError as exc:
            errors.append(("phone", " ".join(exc.messages)))
    email = _unescape(cell("email")).lower()
    if email:
        try:
            validate_email(email)
            data["email"] = email
        except ValidationError:
            errors.append(("email", f"{email!r} is not a valid email address."))
    for column, model_field in OPT_IN_COLUMNS.items():
        if column not in index:
            continue
        try:
            value = _strict_bool(cells[index[column]])
        except ValueError as exc:
            errors.append((column, str(exc)))
            continue
        if value is not None:
            data[model_field] = value
    tags: list[str] = []
    if raw_tags := _unescape(cell(TAGS_COLUMN)):
        try:
            tags = tag_names_clean(raw_tags)
        except ValidationError as exc:
            errors.append((TAGS_COLUMN, " ".join(exc.messages)))
    attributes: dict[str, Any] = {}
    raw = {column[len(ATTRIBUTE_PREFIX) :]: _unescape(cell(column)) for column in index
           if column.startswith(ATTRIBUTE_PREFIX)}  # fmt: skip
    given = {name: value for name, value in raw.items() if value}  # an empty cell: not given
    if given:
        try:
            attributes = contact_attributes_clean(given, definitions=definitions)
        except ValidationError as exc:
            errors.extend((f"{ATTRIBUTE_PREFIX}{m.split(':', 1)[0]}", m) for m in exc.message_dict["attributes"])
    if errors:
        return BadRow(number, line, errors)
    if contact_id is None and not data.get("phone") and not data.get("email"):
        return BadRow(number, line, [(ROW, PHONE_OR_EMAIL)])
    return _Row(number, line, contact_id, data, search_phone, tags, attributes)


# --- The import ---------------------------------------------------------------------------------


@dataclass
class _ParsedBatch:
    rows: list[_Row]  # the good rows, to match and write
    bad_rows: list[BadRow]  # the rows rejected by their own cells
    read: int  # every row read, good or bad


def _parsed_batches(
    rows: CsvRows, index: dict[str, int], region: str, definitions: dict, batch_size: int
) -> Iterator[_ParsedBatch]:
    """The file's rows, parsed and checked cell by cell, in batches of up to ``batch_size`` good rows."""
    batch = _ParsedBatch([], [], 0)
    for number, line, cells, problem in rows:
        batch.read += 1
        if problem:
            batch.bad_rows.append(BadRow(number, line, [(ROW, problem)]))
            continue
        parsed = _parse_row(number, line, cells, index, region, definitions)
        if isinstance(parsed, BadRow):
            batch.bad_rows.append(parsed)
            continue
        batch.rows.append(parsed)
        if len(batch.rows) >= batch_size:
            yield batch
            batch = _ParsedBatch([], [], 0)
    if batch.read:
        yield batch


def _parsed_ahead(batches: Iterator[_ParsedBatch]) -> Iterator[_ParsedBatch]:
    """``batches``, with the next one parsed in a thread while the caller writes this one.

    Exactly one batch is in flight: parsing is Python (CPU) while writing mostly waits for
    PostgreSQL, so the two overlap without holding more than one extra batch in memory. The thread
    never touches the database (Django's connection stays with the caller, in its transaction); an
    error while parsing (an invalid CSV line) is raised here, in the caller's thread.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contacts-import-parse") as pool:
        pending = pool.submit(next, batches, None)
        while (batch := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield batch


@dataclass
class ImportProgress:
    total: int = 0
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.bad_rows)


ProgressCallback = Callable[[ImportProgress], None]


class _RandomIds:
    """uuid4() values from one os.urandom call per thousand ids instead of one per id.

    Each os.urandom call releases the GIL; with the parsing thread busy, taking it back took ~60 µs
    per id in a profile of a loaded machine (a quarter of the batches' writing time). The ids are the
    same as uuid4's: 16 random bytes with the version-4 bits set.
    """

    def __init__(self) -> None:
        self._ids: Iterator[uuid.UUID] = iter(())

    def __call__(self) -> uuid.UUID:
        try:
            return next(self._ids)
        except StopIteration:
            data = os.urandom(16 * 1000)
            self._ids = (uuid.UUID(bytes=data[i : i + 16], version=4) for i in range(0, len(data), 16))
            return next(self._ids)


def _search_text(name: str, email: str | None, phone_forms: list[str]) -> str:
    parts = [normalize_text(name or ""), normalize_text(email or ""), *phone_forms]
    return " ".join(part for part in parts if part)


class _Existing:
    """The columns of an existing contact that an import reads and writes, as attributes: building
    a model instance (every field, its signals and state) cost more than the update itself."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values  # pk, the columns read, later search_text and updated_at


def _existing_contacts(ids: set[uuid.UUID], *, with_json: bool) -> dict[uuid.UUID, _Existing]:
    """The active contacts of ``ids`` (the batch's contactId cells), by id: one query.

    ``with_json``: also their attributes and tag_ids, which only a batch with attr.* or tags cells
    reads (decoding two JSON values per row is a tenth of an update's cost).
    """
    if not ids:
        return {}
    columns = _EXISTING_COLUMNS if with_json else _EXISTING_COLUMNS[:-2]
    names = ("pk", *columns)
    if connection.vendor == "postgresql":
        # One array parameter, as in _holders; jsonb comes back as text here (Django's loader).
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {', '.join(columns)} FROM contacts_contact "  # noqa: S608
                "WHERE deleted_at IS NULL AND id = ANY(%s)",
                [list(ids)],
            )
            found = [_Existing(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        if with_json:
            for contact in found:
                contact.attributes, contact.tag_ids = json.loads(contact.attributes), json.loads(contact.tag_ids)
    else:
        queryset = Contact.objects.active().filter(pk__in=ids).order_by().values_list(*names)
        found = [_Existing(dict(zip(names, row, strict=True))) for row in queryset]
    return {contact.pk: contact for contact in found}


def _holders(phones: set[str], emails: set[str]):
    """(pk, phone, email) of every active contact holding one of ``phones`` or ``emails``.

    One query: a UNION whose two sides each use their partial unique index (an OR of the two would
    scan the table on SQLite: its planner does not see IN implies NOT NULL). On PostgreSQL each
    side takes its values as one array parameter: an IN list of 2,000 placeholders cost more to
    build, send and parse than the lookup itself.
    """
    if not phones and not emails:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, phone, email FROM contacts_contact "
                "WHERE deleted_at IS NULL AND phone IS NOT NULL AND phone = ANY(%s) "
                "UNION ALL SELECT id, phone, email FROM contacts_contact "
                "WHERE deleted_at IS NULL AND email IS NOT NULL AND email = ANY(%s)",
                [list(phones), list(emails)],
            )
            return cursor.fetchall()
    active = Contact.objects.active().order_by()
    by_phone = active.filter(phone__in=phones, phone__isnull=False).values_list("pk", "phone", "email")
    by_email = active.filter(email__in=emails, email__isnull=False).values_list("pk", "phone", "email")
    return by_phone.union(by_email, all=True)


class _Importer:
    def __init__(self, *, actor, dry_run: bool, progress: ImportProgress):
        self.actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
        self.actor_label = (self.actor.email or self.actor.get_username()) if self.actor else "system"
        self.dry_run = dry_run
        self.progress = progress
        # Normalised phone/email → the row of this file that has it (for duplicate reports).
        self.seen: dict[tuple[str, str], int] = {}
        self.tag_ids: dict[str, int] = {}  # the batch's tag names that exist already → id
        self.new_id = _RandomIds()  # one per import: not shared between threads

    def _reject(self, row: _Row, errors: list[tuple[str, str]]) -> None:
        self.progress.bad_rows.append(BadRow(row.number, row.line, errors))

    def run_batch(self, rows: list[_Row]) -> None:
        if not rows:
            return
        targets = _existing_contacts(
            {r.contact_id for r in rows if r.contact_id}, with_json=any(r.tags or r.attributes for r in rows)
        )
        names = {name for r in rows for name in r.tags}
        self.tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk")) if names else {}
        phones = {r.data["phone"] for r in rows if "phone" in r.data}
        emails = {r.data["email"] for r in rows if "email" in r.data}
        holders: dict[tuple[str, str], uuid.UUID] = {}
        for pk, phone, email in _holders(phones, emails):
            if phone in phones:
                holders[("phone", phone)] = pk
            if email in emails:
                holders[("email", email)] = pk

        creates: list[tuple[_Row, dict[str, Any]]] = []
        updates: list[tuple[_Row, _Existing, dict[str, bool | None]]] = []
        for row in rows:
            target = None
            if row.contact_id is not None:
                target = targets.get(row.contact_id)
                if target is None:
                    self._reject(
                        row,
                        [
                            (
                                "contactId",
                                f"No contact with contactId {row.contact_id} (or it is deleted): "
                                "leave contactId empty to create.",
                            )
                        ],
                    )
                    continue
            errors = []
            if target is not None:
                earlier = self.seen.get(("contactId", str(target.pk)))
                if earlier is not None:
                    self._reject(
                        row, [("contactId", f"Duplicate: row {earlier} of this file already updates this contact.")]
                    )
                    continue
            for key in ("phone", "email"):
                value = row.data.get(key)
                if not value:
                    continue
                earlier = self.seen.get((key, value))
                if earlier is not None:
                    errors.append((key, f"Duplicate: row {earlier} of this file already has this {key}."))
                    continue
                holder = holders.get((key, value))
                if holder is not None and (target is None or holder != target.pk):
                    errors.append((key, PHONE_TAKEN if key == "phone" else EMAIL_TAKEN))
            if errors:
                self._reject(row, errors)
                continue
            for key in ("phone", "email"):
                if row.data.get(key):
                    self.seen[(key, row.data[key])] = row.number
            if target is not None:
                self.seen[("contactId", str(target.pk))] = row.number
            if target is None:
                creates.append((row, self._new_contact(row)))
            else:
                changes = self._apply(row, target)
                if changes is None:
                    self.progress.unchanged += 1
                else:
                    updates.append((row, target, changes))
        if self.dry_run:
            self.progress.created += len(creates)
            self.progress.updated += len(updates)
            return
        try:
            with transaction.atomic():
                self._write(creates, updates)
        except IntegrityError:
            # Someone else took a phone or email meanwhile: find the row(s) that lost, keep the rest.
            self._write_one_by_one(creates, updates)
            return
        self.progress.created += len(creates)
        self.progress.updated += len(updates)

    def _new_contact(self, row: _Row) -> dict[str, Any]:
        """The new contact's column values (no model instance: at 10,000 rows/s its __init__ counts)."""
        data = row.data
        now = timezone.now()
        name = data.get("name", "")
        email = data.get("email")
        values = {
            "id": self.new_id(),
            "name": name,
            "phone": data.get("phone"),
            "email": email,
            "whatsapp_user_id": None,
            **{f: data.get(f, False) for f in CHANNEL_OF_FIELD},
            "last_inbound_message_at": None,
            "attributes": {k: v for k, v in row.attributes.items() if v is not None},
            "tag_ids": [],  # set when the batch's tags are known (_write)
            "search_text": _search_text(name, email, row.search_phone),
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        return values

    def _apply(self, row: _Row, contact: _Existing) -> dict[str, bool | None] | None:
        """Apply the row to ``contact`` in memory. Returns opt-in changes {field: old}, None if
        nothing changed at all."""
        changed = False
        for key in ("name", "phone", "email"):
            if key in row.data and getattr(contact, key) != row.data[key]:
                setattr(contact, key, row.data[key])
                changed = True
        opt_in_changes: dict[str, bool | None] = {}
        for model_field in CHANNEL_OF_FIELD:
            if model_field in row.data and getattr(contact, model_field) != row.data[model_field]:
                opt_in_changes[model_field] = getattr(contact, model_field)
                setattr(contact, model_field, row.data[model_field])
                changed = True
        if row.attributes:
            merged = attributes_merge(contact.attributes, row.attributes)
            if merged != (contact.attributes or {}):
                contact.attributes = merged
                changed = True
        if row.tags and not {self.tag_ids.get(name) for name in row.tags} <= set(contact.tag_ids or []):
            changed = True  # a tag it does not have yet (the rows are written in _write)
        if not changed:
            return None
        if "phone" in row.data and row.search_phone:
            forms = row.search_phone
        else:
            forms = phone_search_forms(contact.phone) if contact.phone else []
        contact.search_text = _search_text(contact.name, contact.email, forms)
        if contact.whatsapp_user_id:  # as Contact.save builds it
            contact.search_text = f"{contact.search_text} {contact.whatsapp_user_id.lower()}".strip()
        contact.updated_at = timezone.now()
        return opt_in_changes

    def _events(self, creates, updates) -> list[dict[str, Any]]:
        now = timezone.now()
        actor_id = self.actor.pk if self.actor else None

        def event(contact_id, channel: str, old: bool | None, new: bool) -> dict[str, Any]:
            return {
                "id": self.new_id(),
                "contact_id": contact_id,
                "channel": channel,
                "old_value": old,
                "new_value": new,
                "changed_by_id": actor_id,
                "actor": self.actor_label,
                "source": ConsentSource.IMPORT.value,
                "changed_at": now,
                "proof": "{}",  # JSON as text: what COPY and SQLite take for a JSON column
            }

        events = []
        for row, values in creates:
            events.extend(event(values["id"], c, None, values[f]) for f, c in CHANNEL_OF_FIELD.items() if f in row.data)
        for _row, contact, changes in updates:
            events.extend(
                event(contact.pk, CHANNEL_OF_FIELD[f], old, getattr(contact, f)) for f, old in changes.items()
            )
        return events

    def _write(self, creates, updates) -> None:
        names = {name for row, *_ in [*creates, *updates] for name in row.tags}
        tag_ids = {tag.name: tag.pk for tag in tags_get_or_create(sorted(names))} if names else {}
        for row, values in creates:
            values["tag_ids"] = sorted({tag_ids[name] for name in row.tags})
        if creates:
            _bulk_insert(Contact, [values for _, values in creates])
        if updates:
            _bulk_update([c for _, c, _ in updates], attributes=any(row.attributes for row, _, _ in updates))
        now = timezone.now()
        links = [ContactTag(contact_id=values["id"], tag_id=tag_ids[n], created_at=now) for row, values in creates
                 for n in row.tags]  # fmt: skip
        retagged = [contact.pk for row, contact, _ in updates if row.tags]
        links += [ContactTag(contact_id=contact.pk, tag_id=tag_ids[n], created_at=now) for row, contact, _ in updates
                  for n in row.tags]  # fmt: skip
        if links:
            ContactTag.objects.bulk_create(links, ignore_conflicts=True, batch_size=2000)
        if retagged:
            # Re-read from the tag rows under row locks, so a tagging running meanwhile is not lost.
            locked = Contact.objects.filter(pk__in=retagged).select_for_update().order_by("pk")
            contacts_tag_ids_sync(list(locked.values_list("pk", flat=True)))
        events = self._events(creates, updates)
        if events:
            _bulk_insert(ConsentEvent, events)

    def _write_one_by_one(self, creates, updates) -> None:
        for row, contact in creates:
            try:
                with transaction.atomic():
                    self._write([(row, contact)], [])
                self.progress.created += 1
            except IntegrityError as exc:
                self._reject(row, [self._constraint_error(exc)])
        for row, contact, changes in updates:
            try:
                with transaction.atomic():
                    self._write([], [(row, contact, changes)])
                self.progress.updated += 1
            except IntegrityError as exc:
                self._reject(row, [self._constraint_error(exc)])

    @staticmethod
    def _constraint_error(exc: IntegrityError) -> tuple[str, str]:
        text = str(exc)
        if "phone" in text:
            return ("phone", PHONE_TAKEN)
        if "email" in text:
            return ("email", EMAIL_TAKEN)
        return (ROW, f"The database refused the row: {text.splitlines()[0][:200]}")


def _converter(field) -> Callable[[Any], Any]:
    if isinstance(field, JSONField):
        return lambda value: json.dumps(value)
    """Python value → what the database driver takes, for one field (SQLite path).

    get_db_prep_save per value was a quarter of the import's time on SQLite; the types here are
    few (text, booleans, UUIDs, datetimes), so each field gets its conversion once.
    """
    if isinstance(field, UUIDField) and not connection.features.has_native_uuid_field:
        return lambda value: None if value is None else value.hex  # as UUIDField.get_db_prep_value
    if isinstance(field, DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, ForeignKey):
        return _converter(field.target_field)
    return lambda value: value


def _bulk_insert(model, rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts of attname → value, every concrete field given): COPY on PostgreSQL,
    one prepared INSERT run for every row elsewhere (SQLite)."""
    # A JSON column empty in every row is left to its database default: no per-row JSON to dump.
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (isinstance(f, JSONField) and f.has_db_default() and not any(row[f.attname] for row in rows))
    ]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    if connection.vendor == "postgresql":
        # wrap_database_errors: a unique violation during COPY is Django's IntegrityError, as elsewhere.
        # Only names from the model, quoted, go into the text; every value is copied as data.
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
            for row in rows:
                copy.write_row([Jsonb(row[f.attname]) if f.attname in json_fields else row[f.attname] for f in fields])
        return
    placeholders = ", ".join(["%s"] * len(fields))
    convert = [_converter(f) for f in fields]
    params = [[c(row[f.attname]) for f, c in zip(fields, convert, strict=True)] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", params)  # noqa: S608


_UPDATE_FIELDS = ("name", "phone", "email", *CHANNEL_OF_FIELD, "search_text", "updated_at")


def _bulk_update(contacts: list[_Existing], *, attributes: bool = False) -> None:
    """Write the changed fields of many contacts in one go.

    PostgreSQL: COPY the new values into a temporary table, then one UPDATE … FROM it (set-based:
    the executor starts once, not once per row). Elsewhere (SQLite) one prepared UPDATE run for
    every row. Django's bulk_update builds a CASE per field and row, which costs more Python time
    than the database spends on the rows.
    """
    # attributes only when a row of the batch changed some: most imports have no attr.* columns.
    names = (*_UPDATE_FIELDS, "attributes") if attributes else _UPDATE_FIELDS
    fields = [Contact._meta.get_field(name) for name in names]
    pk = Contact._meta.pk
    quote = connection.ops.quote_name
    table = quote(Contact._meta.db_table)
    if connection.vendor == "postgresql":
        temp = quote("contact_import_update_attributes" if attributes else "contact_import_update")
        definitions = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in [pk, *fields])
        assignments = ", ".join(f"{quote(f.column)} = u.{quote(f.column)}" for f in fields)
        with connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} ({definitions}) ON COMMIT DELETE ROWS")
            columns = ", ".join(quote(f.column) for f in [pk, *fields])
            with cursor.cursor.copy(f"COPY {temp} ({columns}) FROM STDIN") as copy:
                for contact in contacts:
                    values = [Jsonb(v) if isinstance(f, JSONField) else v
                              for f, v in ((f, getattr(contact, f.attname)) for f in fields)]  # fmt: skip
                    copy.write_row([contact.pk, *values])
            cursor.execute(
                f"UPDATE {table} AS c SET {assignments} FROM {temp} AS u "  # noqa: S608
                f"WHERE c.{quote(pk.column)} = u.{quote(pk.column)}"
            )
            cursor.execute(f"TRUNCATE {temp}")  # also outside a transaction (ON COMMIT needs one)
        return
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {quote(pk.column)} = %s"  # noqa: S608
    convert = [_converter(f) for f in fields]
    to_pk = _converter(pk)
    params = [
        [c_(getattr(c, f.attname)) for f, c_ in zip(fields, convert, strict=True)] + [to_pk(c.pk)] for c in contacts
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def contacts_import(
    *,
    rows: CsvRows,
    actor=None,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    batch_size: int | None = None,
    job_id: str = "",
) -> ImportProgress:
    """Import the rows of an opened CSV file (see ``open_csv``) in batches.

    ``on_progress`` is called after every batch (and once at the start, with ``total`` known).
    Each batch is its own transaction: a crash keeps the batches already done, and re-running the
    file then reports their rows as duplicates rather than importing them twice.
    """
    region = settings.DEFAULT_PHONE_REGION
    batch_size = batch_size or settings.CONTACTS_IMPORT_BATCH_SIZE
    index = {
        h: i
        for i, h in enumerate(rows.headers)
        if h in IMPORT_COLUMNS or h == TAGS_COLUMN or h.startswith(ATTRIBUTE_PREFIX)
    }
    definitions = attribute_definitions()
    progress = ImportProgress(total=rows.count())
    if on_progress:
        on_progress(progress)
    importer = _Importer(actor=actor, dry_run=dry_run, progress=progress)
    batches = _parsed_batches(rows, index, region, definitions, batch_size)
    if connection.vendor == "postgresql":
        batches = _parsed_ahead(batches)
    with closing(batches):  # on an error while writing, the parsing thread is waited for too
        for batch in batches:
            # Counted only now, as the batch is written: the progress shown never runs ahead.
            progress.read += batch.read
            progress.bad_rows.extend(batch.bad_rows)
            importer.run_batch(batch.rows)
            if on_progress and batch.rows:
                on_progress(progress)
    progress.bad_rows.sort(key=lambda bad: bad.number)
    if not dry_run:
        audit_record(
            user=importer.actor,
            action="contact.import",
            resource_type="contact_import",
            resource_id=job_id,
            details={
                "rows": progress.read,
                "created": progress.created,
                "updated": progress.updated,
                "unchanged": progress.unchanged,
                "rejected": progress.rejected,
            },
        )
    if on_progress:
        on_progress(progress)
    return progress


__all__ = [
    "EXPORT_ONLY_COLUMNS",
    "BadRow",
    "CsvRows",
    "ImportFileError",
    "ImportProgress",
    "check_size",
    "contacts_import",
    "decode",
    "open_csv",
    "sniff_delimiter",
]
