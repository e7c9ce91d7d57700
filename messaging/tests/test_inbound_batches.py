"""Inbound in batches: statuses of many messages applied together (forward only), and the outbox
relay that hands stored events to the inbound queue with SendMessageBatch."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conftest import ROOT, _database_url, wait_until
from contacts.services import contact_create
from messaging import inbound, sns
from messaging.inbound.outbox import inbound_outbox_relay, inbound_outbox_size
from messaging.models import Direction, InboundEvent, Message, MessageStatus
from messaging.tests.inbound_fixtures import drain_queue
from messaging.tests.sns_signing import PHONE_NUMBER_ID, eum_envelope, headers_for, sns_notification, status_value

pytestmark = pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")

T0 = 1_750_000_000


def _outbound(contact, n: int, status=MessageStatus.SENT) -> Message:
    return Message.objects.create(
        contact=contact,
        channel="whatsapp",
        direction=Direction.OUTBOUND,
        content=f"Message {n}",
        status=status,
        origination_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_message_id=f"wamid.batch-{n}-{uuid.uuid4().hex}",
    )


def _status_body(wamid: str, status: str, timestamp: int, **extra) -> dict:
    value = status_value({"id": wamid, "status": status, "timestamp": str(timestamp), **extra})
    return sns_notification(eum_envelope(value))


def _store(body: dict) -> InboundEvent:
    event, stored = inbound.inbound_event_receive(
        sns_message_id=body["MessageId"], topic_arn=body["TopicArn"], body=body
    )
    assert stored
    return event


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@pytest.fixture
def contact(db):
    return contact_create(name="Diego", phone="+14255550150", opt_ins={"whatsapp": True}, source="admin")


@pytest.mark.django_db
def test_statuses_of_many_messages_are_applied_together_forward_only(contact):
    plain = [_outbound(contact, n) for n in range(40)]
    late = _outbound(contact, 100, status=MessageStatus.READ)
    failing = _outbound(contact, 101)
    events = []
    for n, message in enumerate(plain):
        # Out of order, as SNS delivers them: read before delivered.
        events.append(_store(_status_body(message.whatsapp_message_id, "read", T0 + 20 + n)))
        events.append(_store(_status_body(message.whatsapp_message_id, "delivered", T0 + 10 + n)))
    events.append(_store(_status_body(late.whatsapp_message_id, "delivered", T0 + 5)))  # after read: time only
    error = {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "not on WhatsApp"}}
    events.append(_store(_status_body(failing.whatsapp_message_id, "failed", T0 + 7, errors=[error])))

    with CaptureQueriesContext(connection) as queries:
        summary = inbound.inbound_events_process(event_ids=[str(e.pk) for e in events])

    assert len(summary.processed) == len(events) and summary.one_by_one == [] and summary.failed == []
    assert len(queries) < 20, f"{len(queries)} queries for {len(events)} events: not batched"
    for n, message in enumerate(plain):
        message.refresh_from_db()
        assert message.status == MessageStatus.READ
        assert (message.delivered_at, message.read_at) == (_at(T0 + 10 + n), _at(T0 + 20 + n))
    late.refresh_from_db()
    assert late.status == MessageStatus.READ and late.delivered_at == _at(T0 + 5)
    failing.refresh_from_db()
    assert failing.status == MessageStatus.FAILED and failing.failed_at == _at(T0 + 7)
    assert failing.error_code == "131026" and failing.error_details["details"] == "not on WhatsApp"
    assert not InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED).exists()


@pytest.mark.django_db
def test_a_batch_parses_each_events_sns_message_once(contact, monkeypatch):
    # given: status events, and a count of the parses of an SNS Message
    messages = [_outbound(contact, n) for n in range(5)]
    events = [_store(_status_body(m.whatsapp_message_id, s, T0)) for m in messages for s in ("delivered", "read")]
    parses = []

    def loads(text, **kwargs):
        parses.append(text)
        return json.loads(text, **kwargs)

    monkeypatch.setattr(sns, "json", SimpleNamespace(loads=loads))

    # when
    summary = inbound.inbound_events_process(event_ids=[str(e.pk) for e in events])

    # then: told apart (feedback, voice, EUM) and decoded from one parse each
    assert len(summary.processed) == len(events)
    assert len(parses) == len(events)
    assert Message.objects.filter(pk__in=[m.pk for m in messages], status=MessageStatus.READ).count() == 5


@pytest.mark.django_db
def test_a_batch_never_moves_a_message_backwards_and_running_it_again_changes_nothing(contact):
    message = _outbound(contact, 1, status=MessageStatus.READ)
    read_at = message.read_at
    events = [_store(_status_body(message.whatsapp_message_id, s, T0 + i)) for i, s in enumerate(["sent", "failed"])]

    inbound.inbound_events_process(event_ids=[str(e.pk) for e in events])
    InboundEvent.objects.update(status=InboundEvent.Status.PENDING)
    inbound.inbound_events_process(event_ids=[str(e.pk) for e in events])

    message.refresh_from_db()
    assert message.status == MessageStatus.READ and message.read_at == read_at and message.failed_at is None


@pytest.mark.django_db
def test_a_malformed_event_in_a_batch_is_dead_lettered_and_the_others_are_applied(contact):
    message = _outbound(contact, 1)
    good = _store(_status_body(message.whatsapp_message_id, "delivered", T0))
    bad = _store(sns_notification(json.dumps({"context": {}, "whatsAppWebhookEntry": "{not json"})))

    summary = inbound.inbound_events_process(event_ids=[str(good.pk), str(bad.pk)])

    assert summary.failed == [str(bad.pk)]
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    bad.refresh_from_db()
    assert bad.status == InboundEvent.Status.FAILED and "InboundPayloadError" in bad.error
    assert drain_queue(settings.QUEUE_INBOUND_DLQ)[0]["originalMessageId"] == bad.sns_message_id


@pytest.mark.django_db
@pytest.mark.parametrize("bad_status", [{"timestamp": "soon"}, {"id": ""}], ids=["bad timestamp", "no message id"])
def test_a_status_that_cannot_be_applied_dead_letters_its_event_alone_not_the_batch(contact, bad_status):
    # given: good events, and one whose status has no usable time or no message id
    messages = [_outbound(contact, n) for n in range(3)]
    good = [_store(_status_body(m.whatsapp_message_id, "delivered", T0)) for m in messages]
    value = status_value({"id": messages[0].whatsapp_message_id, "status": "read", "timestamp": str(T0), **bad_status})
    bad = _store(sns_notification(eum_envelope(value)))

    # when
    summary = inbound.inbound_events_process(event_ids=[str(e.pk) for e in [*good, bad]])

    # then: the others are applied now, not after the whole batch's retries
    assert summary.failed == [str(bad.pk)] and sorted(summary.processed) == sorted(str(e.pk) for e in good)
    assert Message.objects.filter(pk__in=[m.pk for m in messages], status=MessageStatus.DELIVERED).count() == 3
    bad.refresh_from_db()
    assert bad.status == InboundEvent.Status.FAILED and "InboundPayloadError" in bad.error
    assert drain_queue(settings.QUEUE_INBOUND_DLQ)[0]["originalMessageId"] == bad.sns_message_id


@pytest.mark.django_db
def test_the_relay_puts_stored_events_on_the_inbound_queue_in_batched_task_messages(contact, settings):
    settings.INBOUND_EVENTS_PER_TASK = 7
    message = _outbound(contact, 1)
    events = [_store(_status_body(message.whatsapp_message_id, "delivered", T0 + i)) for i in range(30)]
    assert inbound_outbox_size() == 30

    assert inbound_outbox_relay() == 30

    queued = drain_queue(settings.QUEUE_INBOUND)
    assert len(queued) == 5  # 7 + 7 + 7 + 7 + 2
    ids = [i for body in queued for i in json.loads(base64.b64decode(body["body"]))[0][0]]
    assert sorted(ids) == sorted(str(e.pk) for e in events)
    assert inbound_outbox_size() == 0 and inbound_outbox_relay() == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _relay_once(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "relay_inbound_events", "--once"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _database_url(), "AWS_MAX_ATTEMPTS": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_events_accepted_while_the_broker_is_down_are_relayed_when_it_returns(
    contact, sns_setup, celery_worker_factory
):
    messages = [_outbound(contact, n) for n in range(12)]
    client = Client()
    for message in messages:
        body = sns_setup.sign(_status_body(message.whatsapp_message_id, "delivered", T0))
        response = client.post(
            "/webhooks/sns/", data=json.dumps(body), content_type="text/plain; charset=UTF-8", **headers_for(body)
        )
        assert response.status_code == 200  # accepted: the webhook never waits for the broker

    down = _relay_once(AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{_closed_port()}")

    assert "0 event(s) relayed." in down.stdout, down.stdout + down.stderr
    assert inbound_outbox_size() == 12 and not InboundEvent.objects.filter(relayed_at__isnull=False).exists()

    back = _relay_once()

    assert "12 event(s) relayed." in back.stdout, back.stdout + back.stderr
    worker = celery_worker_factory(queues=[settings.QUEUE_INBOUND], concurrency=1)
    wait_until(
        lambda: not InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED).exists(),
        timeout=90,
        message=f"every event processed\n{worker.log()[-3000:]}",
    )
    assert set(Message.objects.filter(direction=Direction.OUTBOUND).values_list("status", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True)
def test_the_relay_loop_stops_at_once_on_sigterm_even_while_it_backs_off_from_a_broker_outage(contact):
    # given: an event waiting, and the relay loop failing to reach a broker that is down, so it backs off
    _store(_status_body(_outbound(contact, 1).whatsapp_message_id, "delivered", T0))
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay_inbound_events", "--interval", "20"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _database_url(), "AWS_MAX_ATTEMPTS": "1",
             "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{_closed_port()}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(relay.stdout), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: relay.poll() is not None or any("inbound relay failed" in line for line in output),
            timeout=60,
            message="a failed round",
        )
        assert relay.poll() is None, "".join(output)

        # when: a deployment stops it
        started = time.monotonic()
        relay.send_signal(signal.SIGTERM)

        # then: it exits cleanly within a few seconds, not after its backoff
        assert relay.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert inbound_outbox_size() == 1  # still stored, for the next relay
    finally:
        relay.kill()
        relay.wait()
