"""A batch of statuses moves every message exactly as the forward-only rule (``status_may_advance``)
says, in one UPDATE for sent, delivered and read together, on PostgreSQL and on SQLite alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from messaging import inbound
from messaging.inbound.statuses import STATUS_TIME_FIELDS
from messaging.models import Direction, Message, MessageStatus, status_may_advance
from wecare.tests.sqlite_rerun import rerun_on_sqlite

T0 = 1_750_000_000
AT = datetime.fromtimestamp(T0, tz=UTC)
NEW_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED)


def _outbound(contact: Contact, status: str, **fields) -> Message:
    return Message.objects.create(
        contact=contact,
        channel="whatsapp",
        direction=Direction.OUTBOUND,
        content="Hello",
        status=status,
        whatsapp_message_id=f"wamid.rule-{uuid.uuid4().hex}",
        **fields,
    )


def _status(message: Message, new: str, timestamp: int = T0) -> tuple[dict, str]:
    return {"id": message.whatsapp_message_id, "status": new, "timestamp": str(timestamp)}, ""


def _message_updates(queries) -> list[str]:
    table = connection.ops.quote_name(Message._meta.db_table)
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f"UPDATE {table}")]


@pytest.mark.django_db
def test_every_status_moves_to_every_new_status_exactly_as_the_forward_only_rule_says():
    # given: one message in each status for each status an event may bring
    contact = Contact.objects.create(name="Rule", phone="+14255550151", opt_in_whatsapp=True)
    messages = {(current, new): _outbound(contact, current) for current in MessageStatus.values for new in NEW_STATUSES}
    updated_before = {pair: message.updated_at for pair, message in messages.items()}

    # when: one batch brings each its event
    with CaptureQueriesContext(connection) as queries:
        moved = inbound.statuses_apply([_status(message, new) for (_, new), message in messages.items()])

    # then: one UPDATE for sent, delivered and read together, one for "failed" (its error, none here)
    assert len(_message_updates(queries)) == 2, _message_updates(queries)
    for (current, new), message in messages.items():
        message.refresh_from_db()
        advances = status_may_advance(current, new)
        assert message.status == (new if advances else current), (current, new)
        assert (message.updated_at != updated_before[(current, new)]) == advances, (current, new)
        step_time = getattr(message, STATUS_TIME_FIELDS[new])
        if new == MessageStatus.FAILED:
            assert step_time == (AT if advances else None), (current, new)
        else:  # set with the status, or filled in where the message had none (a late event)
            assert step_time == AT, (current, new)
    assert moved == sum(status_may_advance(current, new) for current, new in messages)


@pytest.mark.django_db
def test_a_batch_takes_the_furthest_status_and_fills_only_the_step_times_a_message_lacks():
    contact = Contact.objects.create(name="Rule", phone="+14255550152", opt_in_whatsapp=True)
    earlier = AT - timedelta(hours=1)
    queued = _outbound(contact, MessageStatus.QUEUED)
    read = _outbound(contact, MessageStatus.READ, sent_at=earlier, read_at=earlier)
    failed = _outbound(contact, MessageStatus.FAILED, failed_at=earlier)
    items = [
        _status(queued, "delivered", T0 + 10),
        _status(queued, "read", T0 + 20),
        _status(queued, "sent", T0 + 5),
        _status(queued, "delivered", T0 + 8),  # the earliest "delivered" is its time
        _status(read, "delivered", T0 + 3),
        _status(read, "delivered", T0 + 2),
        _status(read, "sent", T0 + 1),  # read already has a sent time: kept
        _status(failed, "delivered", T0 + 4),
    ]

    moved = inbound.statuses_apply(items)

    assert moved == 1
    queued.refresh_from_db()
    assert queued.status == MessageStatus.READ
    at = lambda offset: AT + timedelta(seconds=offset)  # noqa: E731
    assert (queued.sent_at, queued.delivered_at, queued.read_at) == (at(5), at(8), at(20))
    read.refresh_from_db()
    assert read.status == MessageStatus.READ
    assert (read.sent_at, read.delivered_at, read.read_at) == (earlier, at(2), earlier)
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED
    assert (failed.delivered_at, failed.failed_at) == (at(4), earlier)


def test_the_same_batches_apply_alike_on_sqlite(tmp_path):
    """The tests above, again in a pytest of their own on a SQLite database (its own SQL path)."""
    rerun_on_sqlite(
        tmp_path,
        __file__,
        (
            "test_every_status_moves_to_every_new_status_exactly_as_the_forward_only_rule_says",
            "test_a_batch_takes_the_furthest_status_and_fills_only_the_step_times_a_message_lacks",
        ),
    )
