"""Tags and custom attributes of contacts: cleaning values against their definitions, and the
services that change them. Every writer (API, admin, import, pages, forms) goes through here.

- Tag names are trimmed, lower-case, 1–64 characters of letters, digits, "-", "_", "." or spaces;
  a tag is created the first time a name is used.
- Attribute values are checked against the AttributeDefinition of their name; an undeclared name is
  refused. ``None`` or "" removes the value. Stored forms: see AttributeDefinition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.services import audit_record
from contacts.models import AttributeDefinition, AttributeType, Contact, ContactTag, Tag

TAG_NAME = re.compile(r"^[\w][\w .\-]{0,63}$")
MAX_TAGS_PER_CALL = 50
SYNC_BATCH = 1000
TEXT_MAX_CHARS = 500
TRUE_WORDS = {"true", "yes", "1", "y"}
FALSE_WORDS = {"false", "no", "0", "n"}


def _db_user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- tags -------------------------------------------------------------------------------------


def tag_name_clean(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError({"tags": f"A tag is text, not {value!r}."})
    name = " ".join(value.split()).lower()
    if not TAG_NAME.match(name):
        raise ValidationError({"tags": f"{value!r} is not a tag name: 1–64 letters, digits, spaces, '-', '_' or '.'."})
    return name


def tag_names_clean(values: Any) -> list[str]:
    """A list of tag names (or one comma-separated string), cleaned, without repeats, in order."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [part for part in values.replace(";", ",").split(",") if part.strip()]
    if not isinstance(values, list | tuple | set):
        raise ValidationError({"tags": "Tags are a list of names."})
    names = list(dict.fromkeys(tag_name_clean(value) for value in values))
    if len(names) > MAX_TAGS_PER_CALL:
        raise ValidationError({"tags": f"At most {MAX_TAGS_PER_CALL} tags at once."})
    return names


def tags_get_or_create(names: Iterable[str]) -> list[Tag]:
    names = list(names)
    if not names:
        return []
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    by_name = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    return [by_name[name] for name in names]


@transaction.atomic
def contacts_tag(
    *, contact_ids: Iterable, add: Iterable[str] = (), remove: Iterable[str] = (), actor, source: str
) -> dict:
    """Add and/or remove tags on many contacts (the contact list's bulk action, the API, the import).

    Deleted contacts are left alone. Returns {"contacts": n, "added": rows, "removed": rows}.
    """
    add_names, remove_names = tag_names_clean(list(add)), tag_names_clean(list(remove))
    if set(add_names) & set(remove_names):
        raise ValidationError({"tags": "A tag cannot be added and removed at once."})
    # Locked in one order, so concurrent taggings of the same contacts queue instead of losing tag_ids.
    ids = list(
        Contact.objects.active()
        .filter(pk__in=list(contact_ids))
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    added = removed = 0
    if ids and add_names:
        tags = tags_get_or_create(add_names)
        rows = [ContactTag(contact_id=cid, tag=tag) for cid in ids for tag in tags]
        before = ContactTag.objects.filter(contact_id__in=ids, tag__in=tags).count()
        ContactTag.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        added = ContactTag.objects.filter(contact_id__in=ids, tag__in=tags).count() - before
    if ids and remove_names:
        removed, _ = ContactTag.objects.filter(contact_id__in=ids, tag__name__in=remove_names).delete()
    if added or removed:
        contacts_tag_ids_sync(ids)
        audit_record(
            user=_db_user(actor),
            action="contact.tags",
            resource_type="contact",
            resource_id=ids[0] if len(ids) == 1 else "",
            details={"contacts": len(ids), "add": add_names, "remove": remove_names, "source": source,
                     "added": added, "removed": removed},
        )  # fmt: skip
    return {"contacts": len(ids), "added": added, "removed": removed}


def contacts_tag_ids_sync(contact_ids: list) -> None:
    """Copy each contact's tag rows into Contact.tag_ids (sorted ids). Callers hold the row locks."""
    for start in range(0, len(contact_ids), SYNC_BATCH):
        batch = contact_ids[start : start + SYNC_BATCH]
        by_contact: dict = {pk: [] for pk in batch}
        rows = ContactTag.objects.filter(contact_id__in=batch).order_by("tag_id").values_list("contact_id", "tag_id")
        for contact_id, tag_id in rows:
            by_contact[contact_id].append(tag_id)
        Contact.objects.bulk_update(
            [Contact(pk=pk, tag_ids=tag_ids) for pk, tag_ids in by_contact.items()], ["tag_ids"]
        )


@transaction.atomic
def tag_delete(*, tag: Tag, actor) -> int:
    """Delete a tag from every contact and the tag itself. Returns how many contacts had it."""
    ids = list(
        Contact.objects.filter(pk__in=ContactTag.objects.filter(tag=tag).values("contact_id"))
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    name = tag.name
    tag.delete()
    contacts_tag_ids_sync(ids)
    audit_record(user=_db_user(actor), action="tag.delete", resource_type="tag", resource_id=name,
                 details={"contacts": len(ids)})  # fmt: skip
    return len(ids)


@transaction.atomic
def contact_set_tags(*, contact: Contact, names: Any, actor, source: str) -> list[str]:
    """Make the contact's tags exactly ``names``. Returns the names now on the contact."""
    wanted = tag_names_clean(names)
    current = set(contact.tags.values_list("name", flat=True))
    contacts_tag(
        contact_ids=[contact.pk],
        add=[n for n in wanted if n not in current],
        remove=sorted(current - set(wanted)),
        actor=actor,
        source=source,
    )
    return sorted(wanted)


# --- attributes -------------------------------------------------------------------------------


def attribute_definitions() -> dict[str, AttributeDefinition]:
    return {d.name: d for d in AttributeDefinition.objects.all()}


def attribute_value_clean(definition: AttributeDefinition, value: Any) -> Any:
    """One value in its stored form, or ValidationError. Text from a CSV or a form is parsed."""
    kind = definition.type
    label = definition.name
    if kind == AttributeType.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError(f"{label}: expected text, not {value!r}.")
        text = " ".join(str(value).split())
        if len(text) > TEXT_MAX_CHARS:
            raise ValidationError(f"{label}: longer than {TEXT_MAX_CHARS} characters.")
        return text
    if kind == AttributeType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError(f"{label}: expected a number, not {value!r}.")
        if isinstance(value, int | float):
            number = Decimal(str(value))
        elif isinstance(value, str):
            try:
                number = Decimal(value.strip().replace(",", ""))
            except InvalidOperation:
                raise ValidationError(f"{label}: {value!r} is not a number.") from None
        else:
            raise ValidationError(f"{label}: expected a number, not {value!r}.")
        if not number.is_finite():
            raise ValidationError(f"{label}: {value!r} is not a number.")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == AttributeType.DATE:
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValidationError(f"{label}: {value!r} is not a date (YYYY-MM-DD).")
    if kind == AttributeType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ValidationError(f"{label}: expected true or false, not {value!r}.")
    if kind == AttributeType.CHOICE:
        if isinstance(value, str) and value.strip() in definition.choices:
            return value.strip()
        raise ValidationError(f"{label}: {value!r} is not one of {', '.join(definition.choices)}.")
    raise ValidationError(f"{label}: unknown attribute type {kind!r}.")


def contact_attributes_clean(
    values: Any, *, definitions: dict[str, AttributeDefinition] | None = None
) -> dict[str, Any]:
    """Check a dict of attribute values; every problem is reported at once (field "attributes").

    Returns the cleaned dict; a value of None or "" is kept as None, meaning "remove".
    """
    if not isinstance(values, dict):
        raise ValidationError({"attributes": "Attributes are an object of name → value."})
    definitions = attribute_definitions() if definitions is None else definitions
    errors: list[str] = []
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            errors.append(f"{name}: no such attribute (declare it first).")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned[name] = None
            continue
        try:
            cleaned[name] = attribute_value_clean(definition, value)
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError({"attributes": errors})
    return cleaned


def attributes_merge(current: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current or {})
    for name, value in cleaned.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


@transaction.atomic
def contact_set_attributes(
    *, contact: Contact, values: Any, actor, source: str, replace: bool = False
) -> dict[str, Any]:
    """Change the contact's attributes: only the names given change (``replace``: the dict becomes
    exactly ``values``). Returns the contact's attributes after the change."""
    cleaned = contact_attributes_clean(values)
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    if locked.is_deleted:
        raise ValidationError({"attributes": "This contact is deleted: an Admin must restore it first."})
    merged = attributes_merge({} if replace else locked.attributes, cleaned)
    if merged != (locked.attributes or {}):
        changed = sorted(k for k in set(merged) | set(locked.attributes or {})
                         if merged.get(k) != (locked.attributes or {}).get(k))  # fmt: skip
        locked.attributes = merged
        locked.save(update_fields=["attributes", "updated_at"])
        # The names only: values may be personal.
        audit_record(
            user=_db_user(actor),
            action="contact.attributes",
            resource_type="contact",
            resource_id=locked.pk,
            details={"source": source, "changed": changed},
        )
    contact.attributes = merged
    contact.updated_at = locked.updated_at
    return merged


def attribute_display(definition: AttributeDefinition | None, value: Any) -> str:
    """A stored value as people read it (pages, exports)."""
    if value is None:
        return ""
    if isinstance(value, bool) or (definition is not None and definition.type == AttributeType.BOOLEAN):
        return "yes" if value else "no"
    return str(value)
