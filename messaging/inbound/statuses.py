"""Status events (sent, delivered, read, failed) move our outbound WhatsApp messages forward only."""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from contacts.models import Channel
from messaging.feedback.whatsapp import whatsapp_failure_apply
from messaging.inbound.payload import InboundPayloadError, _text, _timestamp
from messaging.models import Direction, Message, MessageStatus, status_may_advance
from wecare import metrics

logger = logging.getLogger(__name__)

STATUS_TIME_FIELDS = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}
# The step times a later event may fill in (a "failed" time is only set with the status).
TIME_STATUS = {field: status for status, field in STATUS_TIME_FIELDS.items() if status != MessageStatus.FAILED}
TIME_FIELDS = tuple(TIME_STATUS)


def _outbound(queryset):
    return queryset.filter(direction=Direction.OUTBOUND, channel=Channel.WHATSAPP)


def _find_outbound(*, wamid: str, callback_data: str, envelope_message_id: str) -> Message | None:
    message = _outbound(Message.objects.filter(whatsapp_message_id=wamid)).first()
    if message is not None:
        return message
    if callback_data:
        try:
            message = _outbound(Message.objects.filter(pk=uuid.UUID(callback_data))).first()
        except ValueError:
            message = None
        if message is not None:
            if message.whatsapp_message_id and message.whatsapp_message_id != wamid:
                logger.warning(
                    "status %s: callback data points at %s which has wamid %s",
                    wamid,
                    message.pk,
                    message.whatsapp_message_id,
                )
                return None
            return message
    # SendWhatsAppMessage's messageId, kept as provider_message_id: EUM may echo it (aws-apis.md §1.2).
    for provider_id in (envelope_message_id, wamid):
        if provider_id:
            message = _outbound(Message.objects.filter(provider_message_id=provider_id)).first()
            if message is not None:
                return message
    return None


def _error_details(status: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
    if not errors:
        return "", {}
    first = errors[0]
    details = {
        "code": first.get("code"),
        "title": first.get("title", ""),
        "message": first.get("message", ""),
        "details": (first.get("error_data") or {}).get("details", "")
        if isinstance(first.get("error_data"), dict)
        else "",
        "href": first.get("href", ""),
        "errors": errors,
    }
    return str(first.get("code", "")), details


def pricing_category(status: dict[str, Any]) -> str:
    """Meta's pricing category of the message (``pricing.category``: marketing, utility, ...), or ""."""
    pricing = status.get("pricing")
    category = _text(pricing.get("category")) if isinstance(pricing, dict) else ""
    return category.lower()[:32]


def _record_pricing(pairs: list[tuple[Any, str]]) -> None:
    """Store each message's pricing category (one UPDATE per category; the latest event's wins)."""
    by_category: dict[str, set] = defaultdict(set)
    for pk, category in pairs:
        if category:
            by_category[category].add(pk)
    for category, pks in by_category.items():
        Message.objects.filter(pk__in=pks).exclude(pricing_category=category).update(pricing_category=category)


def status_apply(*, status: dict[str, Any], envelope_message_id: str = "") -> bool:
    """Apply one status event to our outbound message; forward only. Returns whether it changed."""
    wamid = _text(status.get("id"))
    new = _text(status.get("status"))
    if not wamid:
        raise InboundPayloadError("A status event has no message id.")
    if new not in STATUS_TIME_FIELDS:
        logger.info("status %s of %s ignored (not tracked)", new, wamid)
        return False
    at = _timestamp(status.get("timestamp"))
    message = _find_outbound(
        wamid=wamid,
        callback_data=_text(status.get("biz_opaque_callback_data")),
        envelope_message_id=envelope_message_id,
    )
    if message is None:
        logger.warning("status %s of %s matches no outbound message of ours", new, wamid)
        return False
    if message.whatsapp_message_id is None:
        try:
            with transaction.atomic():
                Message.objects.filter(pk=message.pk, whatsapp_message_id__isnull=True).update(
                    whatsapp_message_id=wamid
                )
        except IntegrityError:
            logger.warning("status %s: wamid already belongs to another message than %s", wamid, message.pk)
    time_field = STATUS_TIME_FIELDS[new]
    updates: dict[str, Any] = {"status": new, time_field: at, "updated_at": timezone.now()}
    if new == MessageStatus.FAILED:
        updates["error_code"], updates["error_details"] = _error_details(status)
    may_advance_from = [current for current in MessageStatus.values if status_may_advance(current, new)]
    # Conditional: the row moves only if its status (read now, in the database) may advance to `new`.
    changed = Message.objects.filter(pk=message.pk, status__in=may_advance_from).update(**updates)
    if not changed and new != MessageStatus.FAILED:
        # A late event (delivered after read) still tells when that step happened.
        Message.objects.filter(pk=message.pk, **{f"{time_field}__isnull": True}).update(**{time_field: at})
    _record_pricing([(message.pk, pricing_category(status))])
    logger.info("status %s of message %s (%s): %s", new, message.pk, wamid, "applied" if changed else "not newer")
    if changed:
        metrics.message_status(new, channel=message.channel)
    if new == MessageStatus.FAILED:
        _failure_feedback(message, status, at)
    return bool(changed)


def _failure_feedback(message: Message, status: dict[str, Any], at: datetime) -> None:
    """A permanent WhatsApp failure code suppresses the number (messaging.feedback.whatsapp). Idempotent."""
    code, details = _error_details(status)
    if code:
        whatsapp_failure_apply(
            message=message, code=code, title=details.get("title", ""), at=at, event_id=_text(status.get("id"))
        )


def _find_outbound_many(items: list[tuple[str, str, str]]) -> dict[str, Message]:
    """wamid → our outbound message, for (wamid, callback data, envelope message id) items.

    One query finds those already known by wamid; the rest (a first status before the send's
    answer was stored) fall back to the one-by-one lookup by callback data or provider id.
    """
    wamids = {wamid for wamid, _, _ in items}
    # Only what applying needs: the id, the wamid and, for a failure's suppression, the contact.
    known = _outbound(Message.objects.filter(whatsapp_message_id__in=wamids))
    known = known.only("id", "whatsapp_message_id", "contact_id")
    found = {m.whatsapp_message_id: m for m in known}
    for wamid, callback_data, envelope_message_id in items:
        if wamid not in found:
            message = _find_outbound(wamid=wamid, callback_data=callback_data, envelope_message_id=envelope_message_id)
            if message is not None:
                found[wamid] = message
    return found


# Statuses a batch moves with the one statement below; "failed" carries per-message error details.
ADVANCING_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
ROWS_PER_STATEMENT = 1000  # far below PostgreSQL's and SQLite's limits on parameters


def _advance_and_fill(rows: list[tuple[Any, str | None, datetime | None, dict[str, datetime]]], *, now) -> int:
    """Move many messages forward and fill their step times in one ``UPDATE … FROM`` a list of
    values (per chunk); returns how many moved forward.

    Each row is (message id, status to move to or None, its time, {time field: earliest time}).
    A message moves only if its status, read by this statement, may advance to the new one
    (``status_may_advance``): then the status, ``updated_at`` and that status's time are set. Every
    other step time given is filled only where the message has none (a late "delivered" after
    "read" still tells when that step happened). The same as one conditional UPDATE per status,
    then one per time field, as earlier releases ran it.
    """
    quote = connection.ops.quote_name
    columns = {field: quote(Message._meta.get_field(field).column) for field in TIME_FIELDS}
    status, updated_at = quote("status"), quote("updated_at")
    # Whether m may advance to v.new: per new status, the current statuses the Python rule allows.
    advance_sql, advance_params = "CASE v.new", []
    for new in ADVANCING_STATUSES:
        allowed = [current for current in MessageStatus.values if status_may_advance(current, new)]
        advance_sql += f" WHEN %s THEN m.{status} IN ({', '.join(['%s'] * len(allowed))})"
        advance_params += [new, *allowed]
    advance_sql += " ELSE FALSE END"
    sets = [f"{status} = CASE WHEN {advance_sql} THEN v.new ELSE m.{status} END"]
    params: list[Any] = [*advance_params]
    sets.append(f"{updated_at} = CASE WHEN {advance_sql} THEN %s ELSE m.{updated_at} END")
    params += [*advance_params, connection.ops.adapt_datetimefield_value(now)]
    changes = [advance_sql]
    change_params = [*advance_params]
    for field, column in columns.items():
        sets.append(
            f"{column} = CASE WHEN ({advance_sql}) AND v.new = %s THEN v.at ELSE COALESCE(m.{column}, v.{field}) END"
        )
        params += [*advance_params, TIME_STATUS[field]]
        changes.append(f"(m.{column} IS NULL AND v.{field} IS NOT NULL)")
    # Only names from the model, quoted, go into the text; every value is a parameter.
    template = (
        f"UPDATE {quote(Message._meta.db_table)} AS m SET {', '.join(sets)} FROM {{values}} "  # noqa: S608
        f"WHERE m.{quote('id')} = v.id AND ({' OR '.join(changes)}) "
        f"RETURNING {updated_at} = %s"
    )
    moved = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        values, values_params = _values_list(rows[start : start + ROWS_PER_STATEMENT])
        with connection.cursor() as cursor:
            cursor.execute(
                template.format(values=values),
                [*params, *values_params, *change_params, connection.ops.adapt_datetimefield_value(now)],
            )
            # updated_at is set to `now` only on the rows that moved forward.
            moved += sum(1 for (was_moved,) in cursor.fetchall() if was_moved)
    return moved


def _values_list(rows) -> tuple[str, list[Any]]:
    """The rows as a table ``v(id, new, at, sent_at, delivered_at, read_at)`` and its parameters."""
    pk = Message._meta.pk
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        value
        for pk_value, new, at, fills in rows
        for value in (
            pk.get_db_prep_value(pk_value, connection),
            new,
            adapt(at),
            *(adapt(fills.get(field)) for field in TIME_FIELDS),
        )
    ]
    if connection.vendor == "postgresql":
        row = "(%s::uuid, %s::text, %s::timestamptz" + ", %s::timestamptz" * len(TIME_FIELDS) + ")"
        return f"(VALUES {', '.join([row] * len(rows))}) AS v(id, new, at, {', '.join(TIME_FIELDS)})", params
    # SQLite (3.35+ for UPDATE … FROM and RETURNING): a UNION ALL names the columns.
    row = "SELECT %s AS id, %s AS new, %s AS at, " + ", ".join(f"%s AS {field}" for field in TIME_FIELDS)
    return "(" + " UNION ALL ".join([row] * len(rows)) + ") AS v", params


def status_check(status: dict[str, Any]) -> None:
    """Raise InboundPayloadError where applying ``status`` would (no message id, or a tracked status
    without an epoch time), so a batch sets its event apart before applying the others."""
    if not _text(status.get("id")):
        raise InboundPayloadError("A status event has no message id.")
    if _text(status.get("status")) in STATUS_TIME_FIELDS:
        _timestamp(status.get("timestamp"))


def statuses_apply(items: list[tuple[dict[str, Any], str]]) -> int:
    """Apply many status events, ``(status, envelope message id)``, in a few statements; forward
    only, with the same rules as ``status_apply``. Returns how many messages moved forward.

    Per message, the furthest status the batch reaches is applied if the message's status (read in
    the database, at that moment) may advance to it, and every step time the batch names is filled
    in where it is missing: one UPDATE for all of them (``_advance_and_fill``), and one per
    distinct error for the rare "failed".
    """
    parsed = []
    for status, envelope_message_id in items:
        wamid = _text(status.get("id"))
        new = _text(status.get("status"))
        if not wamid:
            raise InboundPayloadError("A status event has no message id.")
        if new not in STATUS_TIME_FIELDS:
            logger.info("status %s of %s ignored (not tracked)", new, wamid)
            continue
        parsed.append((wamid, new, _timestamp(status.get("timestamp")), status, envelope_message_id))
    if not parsed:
        return 0
    messages = _find_outbound_many([(w, _text(s.get("biz_opaque_callback_data")), e) for w, _, _, s, e in parsed])
    # Per message: the furthest status this batch reaches, and the earliest time of every step it names.
    target: dict[Any, tuple[str, datetime, dict[str, Any]]] = {}
    fills: dict[Any, dict[str, datetime]] = defaultdict(dict)
    for wamid, new, at, status, _ in parsed:
        message = messages.get(wamid)
        if message is None:
            logger.warning("status %s of %s matches no outbound message of ours", new, wamid)
            continue
        if message.whatsapp_message_id is None:
            try:
                with transaction.atomic():
                    Message.objects.filter(pk=message.pk, whatsapp_message_id__isnull=True).update(
                        whatsapp_message_id=wamid
                    )
            except IntegrityError:
                logger.warning("status %s: wamid already belongs to another message than %s", wamid, message.pk)
        if new != MessageStatus.FAILED:
            field = STATUS_TIME_FIELDS[new]
            earliest = fills[message.pk].get(field)
            fills[message.pk][field] = at if earliest is None else min(earliest, at)
        current = target.get(message.pk)
        if current is None or status_may_advance(current[0], new):
            target[message.pk] = (new, at, status)
    now = timezone.now()
    moved = 0
    # "failed" (rare, with per-message error details) is grouped by value.
    failures: dict[tuple, list] = defaultdict(list)
    for pk, (new, at, status) in target.items():
        if new == MessageStatus.FAILED:
            code, details = _error_details(status)
            failures[(at, code, json.dumps(details, sort_keys=True))].append(pk)
    may_fail_from = [current for current in MessageStatus.values if status_may_advance(current, MessageStatus.FAILED)]
    with transaction.atomic():
        for (at, code, details), pks in failures.items():
            moved += Message.objects.filter(pk__in=pks, status__in=may_fail_from).update(
                status=MessageStatus.FAILED,
                updated_at=now,
                failed_at=at,
                error_code=code,
                error_details=json.loads(details),
            )
        by_pk = {message.pk: message for message in messages.values()}
        for pk, (new, at, status) in target.items():
            if new == MessageStatus.FAILED:
                _failure_feedback(by_pk[pk], status, at)
        rows = []
        for pk in sorted(target.keys() | fills.keys(), key=str):  # one order for every worker: no deadlock
            new, at, _ = target.get(pk, (None, None, None))
            if new not in ADVANCING_STATUSES:
                new, at = None, None  # "failed" was applied above; only step times are left to fill
            rows.append((pk, new, at, fills.get(pk, {})))
        moved += _advance_and_fill(rows, now=now)
        _record_pricing([(messages[w].pk, pricing_category(s)) for w, _, _, s, _ in parsed if w in messages])
    logger.info("statuses applied in a batch: %s event(s), %s message(s) moved forward", len(parsed), moved)
    return moved
