"""Dead-letter replay (inbound-dlq): a poisoned event is replayed at most five times, then parked with
its payload for a human; a fixed one is replayed once; copies are replayed once. Also the admin
action, the management command and POST /api/dlq/{queue}/replay (Admins only)."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AuditLog
from accounts.services import user_create
from messaging import dlq, inbound
from messaging.dlq import MAX_REPLAY_ATTEMPTS, dlq_replay, dlq_send
from messaging.models import DLQMessage, InboundEvent, MediaFile, Message
from messaging.tests.inbound_fixtures import FakeEumMedia, drain_queue
from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification
from wecare import aws

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]

QUEUE = "inbound-dlq"


def _queue_url() -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    return aws.client("sqs").get_queue_url(QueueName=prefix + settings.QUEUE_INBOUND_DLQ)["QueueUrl"]


def _in_dlq() -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _store(body: dict) -> InboundEvent:
    return InboundEvent.objects.create(sns_message_id=body["MessageId"], topic_arn=body["TopicArn"], body=body)


def _poisoned() -> InboundEvent:
    """A verified notification that can never be processed: its envelope has no context."""
    body = sns_notification(json.dumps({"whatsAppWebhookEntry": json.dumps({"id": "1", "changes": []})}))
    return _store(body)


def _dead_letter(event: InboundEvent, error: str = "InboundPayloadError: no context") -> None:
    inbound.inbound_event_fail(event_id=event.pk, error=error)


def test_a_failed_event_is_marked_failed_and_dead_lettered_with_its_body():
    event = _poisoned()

    _dead_letter(event)

    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED
    assert "no context" in event.error
    row = DLQMessage.objects.get()
    assert (row.queue_name, row.original_message_id, row.payload) == (QUEUE, event.sns_message_id, event.body)
    assert (row.status, row.retry_count) == (DLQMessage.Status.PENDING, 0)
    assert _in_dlq() == 1


def test_a_poisoned_event_is_replayed_five_times_then_parked_and_nothing_is_lost():
    event = _poisoned()
    _dead_letter(event)

    for attempt in range(1, MAX_REPLAY_ATTEMPTS + 1):
        result = dlq_replay(QUEUE)
        row = DLQMessage.objects.get()
        assert row.retry_count == attempt
        assert "InboundPayloadError" in row.last_error
        if attempt < MAX_REPLAY_ATTEMPTS:
            assert result.failed == [event.sns_message_id]
            assert row.status == DLQMessage.Status.PENDING
            assert _in_dlq() == 1  # returned to the DLQ for the next replay
        else:
            assert result.parked == [event.sns_message_id]
            assert row.status == DLQMessage.Status.PARKED

    again = dlq_replay(QUEUE)

    assert again.received == 0
    row = DLQMessage.objects.get()
    assert (row.status, row.retry_count) == (DLQMessage.Status.PARKED, MAX_REPLAY_ATTEMPTS)
    assert row.payload == event.body  # kept, visible, for a human
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED
    assert not Message.objects.exists()


def test_an_event_that_failed_for_a_passing_reason_is_stored_by_the_replay():
    message = {"id": f"wamid.dlq-{uuid.uuid4().hex}", "type": "image", "image": {"mime_type": "image/jpeg", "id": "42"}}
    event = _store(sns_notification(eum_envelope(inbound_value(message))))
    with FakeEumMedia() as fake:
        fake.fail("ThrottledRequestException", 429)
        with pytest.raises(inbound.MediaUnavailable):
            inbound.inbound_event_process(event_id=event.pk)
        _dead_letter(event, "MediaUnavailable: throttled")  # the task gave up after its retries

        fake.expect("42")
        result = dlq_replay(QUEUE)

    assert result.replayed == [event.sns_message_id]
    assert DLQMessage.objects.get().status == DLQMessage.Status.REPLAYED
    assert _in_dlq() == 0
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    stored = Message.objects.get()
    assert MediaFile.objects.get().s3_key == f"{settings.MEDIA_INCOMING_PREFIX}{stored.pk}.jpeg"


def test_copies_of_one_dead_letter_are_replayed_once():
    message = {"id": f"wamid.dlq-{uuid.uuid4().hex}", "type": "text", "text": {"body": "hi"}}
    event = _store(sns_notification(eum_envelope(inbound_value(message))))
    _dead_letter(event, "ConnectionError: db")
    _dead_letter(event, "ConnectionError: db")  # dead-lettered twice (a redelivered task)
    assert _in_dlq() == 2

    result = dlq_replay(QUEUE)

    assert (result.replayed, result.duplicates) == ([event.sns_message_id], 1)
    assert Message.objects.count() == 1
    assert _in_dlq() == 0


CALLS: list[dict] = []


def failing_handler(payload: dict) -> None:
    CALLS.append(payload)
    raise RuntimeError("still broken")


def test_copies_superseded_by_a_newer_round_are_dropped_without_counting_an_attempt(monkeypatch):
    monkeypatch.setattr(dlq, "handler_paths", lambda: {QUEUE: "messaging.tests.test_dlq_replay.failing_handler"})
    CALLS.clear()
    dlq_send(queue=QUEUE, original_message_id="orig-1", payload={"n": 1}, error="boom")
    dlq_send(queue=QUEUE, original_message_id="orig-1", payload={"n": 1}, error="boom")

    duplicates = 0
    for _ in range(20):  # one message per replay, in whatever order SQS hands them out
        result = dlq_replay(QUEUE, limit=1)
        duplicates += result.duplicates
        if result.received == 0:
            break

    row = DLQMessage.objects.get()
    assert (row.status, row.retry_count) == (DLQMessage.Status.PARKED, MAX_REPLAY_ATTEMPTS)
    assert len(CALLS) == MAX_REPLAY_ATTEMPTS  # the stale copy never ran the handler
    assert duplicates == 1
    assert _in_dlq() == 0


def test_a_dead_letter_that_fails_again_after_a_successful_replay_gets_a_new_round():
    dlq_send(queue=QUEUE, original_message_id="orig-2", payload={"n": 2}, error="boom")
    DLQMessage.objects.filter(original_message_id="orig-2").update(status=DLQMessage.Status.REPLAYED, retry_count=3)
    drain_queue(settings.QUEUE_INBOUND_DLQ)

    row = dlq_send(queue=QUEUE, original_message_id="orig-2", payload={"n": 2}, error="boom again")

    assert (row.status, row.retry_count, row.last_error) == (DLQMessage.Status.PENDING, 0, "boom again")
    assert _in_dlq() == 1


def test_an_unreadable_dlq_message_is_parked_with_its_raw_body():
    aws.client("sqs").send_message(QueueUrl=_queue_url(), MessageBody="this is not json")

    result = dlq_replay(QUEUE)

    assert len(result.parked) == 1
    row = DLQMessage.objects.get()
    assert (row.status, row.payload) == (DLQMessage.Status.PARKED, {"raw": "this is not json"})
    assert _in_dlq() == 0


SLOW_CALLS: list[str] = []


def slow_handler(payload: dict) -> None:
    SLOW_CALLS.append(payload["id"])
    time.sleep(1.0)


@pytest.mark.django_db(transaction=True)
def test_two_replays_at_the_same_time_run_a_dead_letter_once_and_keep_the_other_copy(monkeypatch):
    monkeypatch.setattr(dlq, "handler_paths", lambda: {QUEUE: "messaging.tests.test_dlq_replay.slow_handler"})
    monkeypatch.setattr(dlq, "LEASE_MARGIN_SECONDS", 0)
    monkeypatch.setattr(dlq, "REPLAY_VISIBILITY_SECONDS", 3)  # the lease, so the kept copy is back soon
    SLOW_CALLS.clear()
    for _ in range(2):  # two copies, so each replay can receive one
        dlq_send(queue=QUEUE, original_message_id="orig-3", payload={"id": "orig-3"}, error="boom")
    barrier = threading.Barrier(2)
    results = []

    def replay():
        try:
            barrier.wait(timeout=10)
            results.append(dlq_replay(QUEUE, limit=1))
        finally:
            connection.close()

    threads = [threading.Thread(target=replay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert SLOW_CALLS == ["orig-3"]
    assert sorted((len(r.replayed), r.busy) for r in results) == [(0, 1), (1, 0)]
    assert DLQMessage.objects.get().status == DLQMessage.Status.REPLAYED
    # The copy the second replay kept back (the first might have died) comes back after the lease
    # and is then recognised as a duplicate.
    assert _in_dlq() == 1
    time.sleep(4)
    later = dlq_replay(QUEUE)
    assert (later.duplicates, SLOW_CALLS) == (1, ["orig-3"])
    assert _in_dlq() == 0


# --- the three ways in --------------------------------------------------------------------------


def test_the_replay_dlq_command_replays_and_reports():
    _dead_letter(_poisoned())
    out = io.StringIO()

    call_command("replay_dlq", QUEUE, "--limit", "10", stdout=out)

    assert json.loads(out.getvalue().split("\n}")[0] + "\n}")["failed"]
    assert "1 received, 0 replayed, 1 failed" in out.getvalue()
    assert DLQMessage.objects.get().retry_count == 1
    assert AuditLog.objects.filter(action="dlq.replay", resource_id=QUEUE).exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [(["nope-dlq"], "Unknown dead-letter queue"), ([QUEUE, "--limit", "0"], "between 1 and 100"),
     ([QUEUE, "--limit", "101"], "between 1 and 100")],
)  # fmt: skip
def test_the_replay_dlq_command_refuses_bad_arguments(args, match):
    with pytest.raises(CommandError, match=match):
        call_command("replay_dlq", *args, stdout=io.StringIO())


@pytest.fixture
def admin_user():
    return user_create(email="admin@example.com", role="Admin", password="x-Strong-Pass-1")


@pytest.fixture
def operator_user():
    return user_create(email="operator@example.com", role="Operator", password="x-Strong-Pass-1")


def test_an_admin_replays_a_dlq_through_the_api(client, admin_user):
    event = _poisoned()
    _dead_letter(event)
    client.force_login(admin_user)

    response = client.post(f"/api/dlq/{QUEUE}/replay", data={"limit": 5}, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {
        "queue": QUEUE,
        "received": 1,
        "replayed": [],
        "failed": [event.sns_message_id],
        "parked": [],
        "duplicates": 0,
        "busy": 0,
    }
    assert AuditLog.objects.get(action="dlq.replay").user == admin_user


def test_operators_and_anonymous_callers_may_not_replay(client, operator_user):
    _dead_letter(_poisoned())

    anonymous = client.post(f"/api/dlq/{QUEUE}/replay")
    client.force_login(operator_user)
    operator = client.post(f"/api/dlq/{QUEUE}/replay")

    assert anonymous.status_code in (401, 403)  # 401 where a bearer-token scheme is offered
    assert operator.status_code == 403
    assert DLQMessage.objects.get().retry_count == 0  # nothing was replayed
    assert AuditLog.objects.filter(action="forbidden", user=operator_user).exists()


def test_the_api_names_unknown_queues_and_bad_limits(client, admin_user):
    client.force_login(admin_user)

    unknown = client.post("/api/dlq/not-a-dlq/replay")
    too_many = client.post(f"/api/dlq/{QUEUE}/replay", data={"limit": 500}, content_type="application/json")

    assert unknown.status_code == 404
    assert "inbound-dlq" in unknown.json()["detail"]
    assert too_many.status_code == 400
    assert "limit" in too_many.json()


def test_an_admin_replays_from_the_admin_action(client, admin_user):
    event = _poisoned()
    _dead_letter(event)
    row = DLQMessage.objects.get()
    client.force_login(admin_user)

    page = client.get("/admin/messaging/dlqmessage/")
    response = client.post(
        "/admin/messaging/dlqmessage/", {"action": "replay_queues", "_selected_action": [str(row.pk)]}, follow=True
    )

    assert page.status_code == 200
    assert b"Replay the dead-letter queue" in page.content
    assert response.status_code == 200
    assert "1 received, 0 replayed, 1 failed again" in response.content.decode()
    row.refresh_from_db()
    assert row.retry_count == 1


def test_the_inbound_admin_pages_show_events_and_dead_letters(client, admin_user):
    event = _poisoned()
    _dead_letter(event)
    client.force_login(admin_user)

    events = client.get("/admin/messaging/inboundevent/?has_error=yes")
    detail = client.get(f"/admin/messaging/inboundevent/{event.pk}/change/")
    dead = client.get(f"/admin/messaging/dlqmessage/{DLQMessage.objects.get().pk}/change/")

    assert events.status_code == detail.status_code == dead.status_code == 200
    assert event.sns_message_id in events.content.decode()
    assert "whatsAppWebhookEntry" in detail.content.decode()


def test_operators_do_not_get_the_replay_action(client, operator_user):
    client.force_login(operator_user)

    assert client.get("/admin/messaging/dlqmessage/").status_code == 403


def test_an_event_that_cannot_even_be_dead_lettered_is_marked_failed_and_its_payload_kept(settings, monkeypatch):
    import socket

    event = _poisoned()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{closed}")
    settings.AWS_MAX_ATTEMPTS = 1
    aws.reset_clients()
    try:
        with pytest.raises(Exception, match="Could not connect"):
            _dead_letter(event)
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
        aws.reset_clients()

    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED
    assert "could not be dead-lettered" in event.error
    assert DLQMessage.objects.get().payload == event.body  # visible in the admin, for a human


# --- Nothing on a DLQ is processed unless the platform signed it ---------------------------------
def _opt_out_notification() -> dict:
    """A well-formed inbound "STOP" from a made-up customer: what a forger would want processed."""
    return sns_notification(eum_envelope(inbound_value({"type": "text", "text": {"body": "STOP"}})))


def test_a_body_someone_else_wrote_to_the_dlq_is_parked_and_never_processed():
    # given someone with write access to the queue, but not the platform's key
    forged = _opt_out_notification()
    body = {"originalMessageId": forged["MessageId"], "payload": forged, "error": "x", "retryCount": 0}
    aws.client("sqs").send_message(QueueUrl=_queue_url(), MessageBody=json.dumps(body))

    # when
    result = dlq_replay(QUEUE)

    # then
    assert len(result.parked) == 1 and result.replayed == []
    row = DLQMessage.objects.get()
    assert row.status == DLQMessage.Status.PARKED
    assert "not signed by the platform" in row.last_error
    assert not InboundEvent.objects.exists() and not Message.objects.exists()
    assert _in_dlq() == 0


def test_a_signed_dead_letter_whose_payload_was_changed_is_parked_and_never_processed():
    event = _poisoned()
    _dead_letter(event)
    message = aws.client("sqs").receive_message(QueueUrl=_queue_url(), MaxNumberOfMessages=1)["Messages"][0]
    aws.client("sqs").delete_message(QueueUrl=_queue_url(), ReceiptHandle=message["ReceiptHandle"])
    body = json.loads(message["Body"])
    assert body["signature"]  # the platform signed what it sent
    # the same signature over another payload, under a fresh id
    forged = _opt_out_notification()
    body.update(originalMessageId=forged["MessageId"], payload=forged)
    aws.client("sqs").send_message(QueueUrl=_queue_url(), MessageBody=json.dumps(body))

    result = dlq_replay(QUEUE)

    assert len(result.parked) == 1 and result.replayed == [] and result.failed == []
    assert not Message.objects.exists()
    assert not InboundEvent.objects.filter(sns_message_id=forged["MessageId"]).exists()
