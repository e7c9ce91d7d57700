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
    found = {m.whatsapp_message_id: m for m in _outbound(Message.objects.filter(whatsapp_message_id__in=wamids))}
    for wamid, callback_data, envelope_message_id in items:
        if wamid not in found:
            message = _find_outbound(wamid=wamid, callback_data=callback_data, envelope_message_id=envelope_message_id)
            if message is not None:
                found[wamid] = message
    return found


def _update_from_values(
    field: str, rows: list[tuple[Any, datetime]], *, status: str | None = None, now=None, status_in=()
) -> int:
    """PostgreSQL: set ``field`` per message from a VALUES list in one statement. With ``status``,
    also move the status, only where it may advance (``status_in``); without, only fill an empty
    ``field``. Returns the rows changed."""
    table = Message._meta.db_table
    quote = connection.ops.quote_name
    column = quote(Message._meta.get_field(field).column)
    if connection.vendor == "postgresql":
        values = "(VALUES " + ", ".join(["(%s::uuid, %s::timestamptz)"] * len(rows)) + ") AS v(id, at)"
        params: list[Any] = [v for row in rows for v in row]
    else:  # SQLite (3.33+ has UPDATE … FROM): a UNION ALL names the columns, stored as Django stores them
        values = "(" + " UNION ALL ".join(["SELECT %s AS id, %s AS at"] * len(rows)) + ") AS v"
        pk = Message._meta.pk
        params = [
            v
            for pk_value, at in rows
            for v in (pk.get_db_prep_value(pk_value, connection), connection.ops.adapt_datetimefield_value(at))
        ]
    if status is not None:
        sets = f"{quote('status')} = %s, {quote('updated_at')} = %s, {column} = v.at"
        where = f"m.{quote('status')} IN ({', '.join(['%s'] * len(status_in))})"
        params = [status, now, *params, *status_in]
    else:
        sets = f"{column} = v.at"
        where = f"m.{column} IS NULL"
    # Only names from the model, quoted, go into the text; every value is a parameter.
    sql = (
        f"UPDATE {quote(table)} AS m SET {sets} FROM {values} "  # noqa: S608
        f"WHERE m.{quote('id')} = v.id AND {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def statuses_apply(items: list[tuple[dict[str, Any], str]]) -> int:
    """Apply many status events, ``(status, envelope message id)``, in a few statements; forward
    only, with the same rules as ``status_apply``. Returns how many messages moved forward.

    Per target status and time one conditional UPDATE moves every message whose status (read in
    the database, at that moment) may advance to it; then, per time field and value, one UPDATE
    fills the time of a step a message had not recorded (a late "delivered" after "read").
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
    # Per message: the furthest status this batch reaches, and the time of every step it names.
    target: dict[Any, tuple[str, datetime, dict[str, Any]]] = {}
    times: dict[str, dict[Any, datetime]] = {field: {} for field in STATUS_TIME_FIELDS.values()}
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
        field = STATUS_TIME_FIELDS[new]
        if new != MessageStatus.FAILED:
            earliest = times[field].get(message.pk)
            times[field][message.pk] = at if earliest is None else min(earliest, at)
        current = target.get(message.pk)
        if current is None or status_may_advance(current[0], new):
            target[message.pk] = (new, at, status)
    now = timezone.now()
    moved = 0
    # "failed" (rare, with per-message error details) is grouped by value; the other statuses and
    # the time fills are one UPDATE … FROM a list of (message, time) each.
    advances: dict[tuple, list] = defaultdict(list)
    for pk, (new, at, status) in target.items():
        error = _error_details(status) if new == MessageStatus.FAILED else ("", {})
        advances[(new, at, error[0], json.dumps(error[1], sort_keys=True))].append(pk)
    with transaction.atomic():
        for (new, at, code, details), pks in advances.items():
            may_advance_from = [current for current in MessageStatus.values if status_may_advance(current, new)]
            if new != MessageStatus.FAILED:
                continue  # below, one UPDATE … FROM per status
            updates: dict[str, Any] = {"status": new, "updated_at": now, STATUS_TIME_FIELDS[new]: at}
            if new == MessageStatus.FAILED:
                updates["error_code"], updates["error_details"] = code, json.loads(details)
            moved += Message.objects.filter(pk__in=pks, status__in=may_advance_from).update(**updates)
        failed_messages = {message.pk: message for message in messages.values()}
        for pk, (new, at, status) in target.items():
            if new == MessageStatus.FAILED:
                _failure_feedback(failed_messages[pk], status, at)
        for new in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ):
            rows = [(pk, at) for pk, (status_, at, _) in target.items() if status_ == new]
            if rows:
                may_advance_from = [c for c in MessageStatus.values if status_may_advance(c, new)]
                moved += _update_from_values(
                    STATUS_TIME_FIELDS[new], rows, status=new, now=now, status_in=may_advance_from
                )
        for field, values in times.items():
            if values:
                _update_from_values(field, list(values.items()))
        _record_pricing([(messages[w].pk, pricing_category(s)) for w, _, _, s, _ in parsed if w in messages])
    logger.info("statuses applied in a batch: %s event(s), %s message(s) moved forward", len(parsed), moved)
    return moved
