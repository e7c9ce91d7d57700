"""A segment's filter: its JSON form, how it is checked, and how it becomes a query.

Every key is optional; the conditions given must all hold (AND)::

    {
      "tagsAny":  ["vip", "pune"],        # has at least one of these tags
      "tagsAll":  ["newsletter"],         # has every one of these tags
      "tagsNone": ["churned"],            # has none of these tags
      "attributes": [                     # declared attributes (contacts.AttributeDefinition)
        {"name": "city", "op": "equals", "value": "Pune"},
        {"name": "city", "op": "contains", "value": "pu"},          # text, choice
        {"name": "birthday", "op": "before", "value": "2000-01-01"}, # date, number ("after" too)
        {"name": "plan", "op": "empty"},  {"name": "plan", "op": "notEmpty"}
      ],
      "consent": {"whatsapp": true, "sms": false},   # opt-in per channel is exactly this
      "hasAddress": ["whatsapp", "email"],           # a phone (WhatsApp, SMS) / an email
      "lastInboundAfter": "2026-11-01", "lastInboundBefore": "30d",
      "inWhatsAppWindow": true,                      # last inbound within 24 h (false: not)
      "createdAfter": "2026-01-01T00:00:00Z", "createdBefore": "7d"
    }

Times are an ISO date (midnight UTC), an ISO date-time, or "<N>d" (N days before the moment the
segment is evaluated: a segment "wrote in the last 30 days" stays right over time).

``spec_clean`` checks a spec and returns its normal form (or raises ValidationError with every
problem); ``spec_q`` turns a cleaned spec into a Q over active contacts, for a given now.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from contacts.attributes import attribute_definitions, attribute_value_clean, tag_name_clean
from contacts.models import AttributeType, Channel, ContactTag, Tag
from messaging.safety import WINDOW

TAG_KEYS = ("tagsAny", "tagsAll", "tagsNone")
TIME_KEYS = ("lastInboundAfter", "lastInboundBefore", "createdAfter", "createdBefore")
KEYS = (*TAG_KEYS, "attributes", "consent", "hasAddress", *TIME_KEYS, "inWhatsAppWindow")
MAX_TAGS = 50
MAX_ATTRIBUTE_CONDITIONS = 20
RELATIVE = re.compile(r"^(\d{1,5})d$")

# Which operators each attribute type takes.
OPS_BY_TYPE = {
    AttributeType.TEXT: ("equals", "contains", "empty", "notEmpty"),
    AttributeType.CHOICE: ("equals", "contains", "empty", "notEmpty"),
    AttributeType.NUMBER: ("equals", "before", "after", "empty", "notEmpty"),
    AttributeType.DATE: ("equals", "before", "after", "empty", "notEmpty"),
    AttributeType.BOOLEAN: ("equals", "empty", "notEmpty"),
}


def _clean_time(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip()
        if RELATIVE.match(value):
            return value
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
        parsed = parse_datetime(value)
        if parsed is not None:
            if timezone.is_naive(parsed):
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.isoformat()
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD), a date-time or a number of days ago (30d)")


def time_resolve(value: str, *, now: datetime) -> datetime:
    """A cleaned time value as a moment (relative values from ``now``)."""
    if match := RELATIVE.match(value):
        return now - timedelta(days=int(match.group(1)))
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
    return datetime.fromisoformat(value)


def _clean_tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("a list of tag names")
    if len(value) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    names = []
    for item in value:
        try:
            names.append(tag_name_clean(item))
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None
    return list(dict.fromkeys(names))


def _clean_attribute(condition: Any, definitions: dict) -> dict:
    if not isinstance(condition, dict):
        raise ValueError('each condition is an object {"name", "op", "value"}')
    unknown = set(condition) - {"name", "op", "value"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    name, op = condition.get("name"), condition.get("op")
    definition = definitions.get(name) if isinstance(name, str) else None
    if definition is None:
        raise ValueError(f"no attribute {name!r} is declared")
    allowed = OPS_BY_TYPE[AttributeType(definition.type)]
    if op not in allowed:
        raise ValueError(f"{name} ({definition.type}) takes op {', '.join(allowed)}, not {op!r}")
    if op in ("empty", "notEmpty"):
        return {"name": name, "op": op}
    value = condition.get("value")
    if op == "contains":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} contains: give some text")
        return {"name": name, "op": op, "value": value.strip()[:200]}
    try:
        cleaned = attribute_value_clean(definition, value)
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    return {"name": name, "op": op, "value": cleaned}


def spec_clean(spec: Any) -> dict:
    """The spec in normal form (only the keys given), or ValidationError listing every problem by key."""
    if not isinstance(spec, dict):
        raise ValidationError({"spec": ["A segment is an object of conditions."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    unknown = set(spec) - set(KEYS)
    if unknown:
        errors["spec"] = [f"Unknown key(s) {', '.join(sorted(unknown))}: use {', '.join(KEYS)}."]
    for key in TAG_KEYS:
        if spec.get(key):
            try:
                cleaned[key] = _clean_tags(spec[key])
            except ValueError as exc:
                errors[key] = [f"{key}: {exc}."]
    if spec.get("attributes"):
        conditions = spec["attributes"]
        if not isinstance(conditions, list) or len(conditions) > MAX_ATTRIBUTE_CONDITIONS:
            errors["attributes"] = [f"attributes: a list of at most {MAX_ATTRIBUTE_CONDITIONS} conditions."]
        else:
            definitions = attribute_definitions()
            items, problems = [], []
            for condition in conditions:
                try:
                    items.append(_clean_attribute(condition, definitions))
                except ValueError as exc:
                    problems.append(f"attributes: {exc}.")
            if problems:
                errors["attributes"] = problems
            else:
                cleaned["attributes"] = items
    if spec.get("consent"):
        consent = spec["consent"]
        if not isinstance(consent, dict) or not all(
            channel in Channel.values and type(value) is bool for channel, value in consent.items()
        ):
            errors["consent"] = [f"consent: an object of channel ({', '.join(Channel.values)}) → true or false."]
        else:
            cleaned["consent"] = dict(consent)
    if spec.get("hasAddress"):
        channels = spec["hasAddress"]
        if not isinstance(channels, list) or not all(channel in Channel.values for channel in channels):
            errors["hasAddress"] = [f"hasAddress: a list of channels ({', '.join(Channel.values)})."]
        else:
            cleaned["hasAddress"] = sorted(set(channels))
    for key in TIME_KEYS:
        if spec.get(key) not in (None, ""):
            try:
                cleaned[key] = _clean_time(spec[key])
            except ValueError as exc:
                errors[key] = [f"{key}: {exc}."]
    window = spec.get("inWhatsAppWindow")
    if window is not None:
        if type(window) is not bool:
            errors["inWhatsAppWindow"] = ["inWhatsAppWindow: true, false or null."]
        else:
            cleaned["inWhatsAppWindow"] = window
    if errors:
        raise ValidationError(errors)
    return cleaned


def _has_any_tag(tag_ids: list[int]) -> Q | Exists:
    """At least one of these tags. PostgreSQL reads Contact.tag_ids (GIN: jsonb @> per tag, OR-ed);
    elsewhere (SQLite under `make run`) the tag rows themselves."""
    if not tag_ids:
        return Q(pk__in=[])
    if connection.vendor == "postgresql":
        q = Q()
        for tag_id in tag_ids:
            q |= Q(tag_ids__contains=[tag_id])
        return q
    return Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag_id__in=tag_ids))


def _attribute_q(condition: dict) -> Q:
    name, op, value = condition["name"], condition["op"], condition.get("value")
    # Names are declared attribute names (^[a-z][a-z0-9_]*$), so they are safe as key lookups.
    key = f"attributes__{name}"
    if op == "empty":
        return ~Q(attributes__has_key=name)
    if op == "notEmpty":
        return Q(attributes__has_key=name)
    if op == "contains":
        return Q(**{f"{key}__icontains": value})
    if op == "equals":
        if connection.vendor == "postgresql":
            return Q(attributes__contains={name: value})  # jsonb @>: served by the GIN index
        return Q(**{key: value})
    # before/after: jsonb compares numbers as numbers and ISO dates as text, both in order.
    return Q(**{f"{key}__{'lt' if op == 'before' else 'gt'}": value})


def _tag_ids(names: list[str]) -> dict[str, int]:
    return dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))


def spec_q(spec: dict, *, now: datetime) -> Q:
    """The cleaned spec as one Q over contacts (apply it to Contact.objects.active())."""
    q = Q()
    names = [name for key in TAG_KEYS for name in spec.get(key, [])]
    ids = _tag_ids(names) if names else {}
    if spec.get("tagsAny"):
        q &= _has_any_tag([ids[name] for name in spec["tagsAny"] if name in ids])
    all_ids = [ids.get(name) for name in spec.get("tagsAll", [])]
    if None in all_ids:
        q &= Q(pk__in=[])  # a tag nobody has
    elif all_ids and connection.vendor == "postgresql":
        q &= Q(tag_ids__contains=sorted(all_ids))  # one containment test for all of them
    else:
        for tag_id in all_ids:
            q &= _has_any_tag([tag_id])
    none = [ids[name] for name in spec.get("tagsNone", []) if name in ids]
    if none:
        q &= ~_has_any_tag(none)
    for condition in spec.get("attributes", []):
        q &= _attribute_q(condition)
    for channel, value in spec.get("consent", {}).items():
        q &= Q(**{f"opt_in_{channel}": value})
    for channel in spec.get("hasAddress", []):
        q &= address_q(channel)
    if "lastInboundAfter" in spec:
        q &= Q(last_inbound_message_at__gt=time_resolve(spec["lastInboundAfter"], now=now))
    if "lastInboundBefore" in spec:
        q &= Q(last_inbound_message_at__lt=time_resolve(spec["lastInboundBefore"], now=now))
    if "createdAfter" in spec:
        q &= Q(created_at__gt=time_resolve(spec["createdAfter"], now=now))
    if "createdBefore" in spec:
        q &= Q(created_at__lt=time_resolve(spec["createdBefore"], now=now))
    if "inWhatsAppWindow" in spec:
        q &= window_q(now) if spec["inWhatsAppWindow"] else ~window_q(now)
    return q


def address_q(channel: str) -> Q:
    """The contact has an address for the channel (the gate's rule 4: a phone, or an email)."""
    field = "email" if channel == Channel.EMAIL else "phone"
    return Q(**{f"{field}__isnull": False}) & ~Q(**{field: ""})


def window_q(now: datetime) -> Q:
    """Inside the WhatsApp 24-hour window (messaging.safety.within_window: now - last < 24 h)."""
    return Q(last_inbound_message_at__gt=now - WINDOW)


def spec_summary(spec: dict) -> list[str]:
    """The spec as short sentences (segment lists, the job page)."""
    parts = []
    if spec.get("tagsAny"):
        parts.append("tagged any of " + ", ".join(spec["tagsAny"]))
    if spec.get("tagsAll"):
        parts.append("tagged all of " + ", ".join(spec["tagsAll"]))
    if spec.get("tagsNone"):
        parts.append("tagged none of " + ", ".join(spec["tagsNone"]))
    for c in spec.get("attributes", []):
        parts.append(" ".join(str(x) for x in (c["name"], c["op"], c.get("value", "")) if x != ""))
    for channel, value in spec.get("consent", {}).items():
        parts.append(f"{'opted in to' if value else 'not opted in to'} {channel}")
    for channel in spec.get("hasAddress", []):
        parts.append(f"has an address for {channel}")
    labels = {
        "lastInboundAfter": "last wrote after",
        "lastInboundBefore": "last wrote before",
        "createdAfter": "created after",
        "createdBefore": "created before",
    }
    for key, label in labels.items():
        if key in spec:
            value = spec[key]
            parts.append(f"{label} {value[:-1] + ' days ago' if RELATIVE.match(value) else value}")
    if "inWhatsAppWindow" in spec:
        parts.append("inside the WhatsApp window" if spec["inWhatsAppWindow"] else "outside the WhatsApp window")
    return parts or ["every contact"]
