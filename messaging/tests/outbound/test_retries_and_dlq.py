"""Transient errors are retried (backoff, jitter, at most 3 retries), permanent ones are not; a message
that finally fails records the provider's error and goes to outbound-dlq, from where it can be replayed."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings

from messaging.dlq import dlq_replay
from messaging.models import DLQMessage, Message
from messaging.safety import SafetyRefusal
from messaging.services import (
    DeliveryDeferred,
    handle_outbound_dlq_payload,
    message_deliver,
    message_send,
    retry_countdown,
    send_request_build,
)
from messaging.tasks.outbound import deliver_message
from messaging.tests.outbound.conftest import drain_queue
from wecare import aws

pytestmark = pytest.mark.django_db


def _dlq_bodies() -> list[dict]:
    return [json.loads(body) for body in drain_queue(django_settings.QUEUE_OUTBOUND_DLQ)]


@pytest.fixture
def empty_outbound_dlq():
    drain_queue(django_settings.QUEUE_OUTBOUND_DLQ)


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.OUTBOUND_RETRY_BASE_SECONDS = 2.0
    settings.OUTBOUND_RETRY_MAX_SECONDS = 10.0

    samples = {attempt: [retry_countdown(attempt) for _ in range(200)] for attempt in (1, 2, 3, 4)}

    assert all(1.0 <= s <= 2.0 for s in samples[1])
    assert all(2.0 <= s <= 4.0 for s in samples[2])
    assert all(4.0 <= s <= 8.0 for s in samples[3])
    assert all(5.0 <= s <= 10.0 for s in samples[4])  # capped at 10
    assert len({round(s, 3) for s in samples[2]}) > 50  # jittered, not one value


def test_a_throttled_send_is_deferred_and_stays_queued_with_the_error_noted(make_contact, live, sms_stub):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    sms_stub.error("send_text_message", "ThrottlingException", 400, "Rate exceeded", "req-throttle")

    with pytest.raises(DeliveryDeferred) as deferred:
        message_deliver(message.pk)

    message.refresh_from_db()
    assert 1.0 <= deferred.value.countdown <= 2.0
    assert message.status == "queued" and message.attempts == 1 and message.locked_until is None
    assert message.error_details["lastError"]["code"] == "ThrottlingException"
    assert message.error_details["lastError"]["requestId"] == "req-throttle"


def test_after_three_retries_a_transient_error_fails_the_message_and_dead_letters_it(
    make_contact, live, whatsapp_stub, empty_outbound_dlq
):
    contact = make_contact(whatsapp=True, window=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hello"), enqueue=False)
    for attempt in range(4):
        whatsapp_stub.error("send_whatsapp_message", "ThrottledRequestException", 429, "slow down", f"req-{attempt}")

    for _ in range(3):
        with pytest.raises(DeliveryDeferred):
            message_deliver(message.pk)
    final = message_deliver(message.pk)

    whatsapp_stub.done()
    assert final.status == "failed" and final.attempts == 4
    assert final.error_code == "ThrottledRequestException"
    assert final.error_details["requestId"] == "req-3"
    assert final.error_details["message"] == "slow down"
    assert final.error_details["permanent"] is False
    row = DLQMessage.objects.get(queue_name=django_settings.QUEUE_OUTBOUND_DLQ, original_message_id=str(message.pk))
    assert row.payload["messageId"] == str(message.pk) and row.payload["content"] == "Hello"
    [body] = _dlq_bodies()
    assert body["originalMessageId"] == str(message.pk)
    assert body["payload"]["errorCode"] == "ThrottledRequestException"


@pytest.mark.parametrize(
    ("code", "status"),
    [("ValidationException", 400), ("AccessDeniedException", 403), ("ResourceNotFoundException", 404)],
)
def test_a_permanent_error_is_not_retried(make_contact, live, whatsapp_stub, empty_outbound_dlq, code, status):
    contact = make_contact(whatsapp=True, window=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hello"), enqueue=False)
    whatsapp_stub.error("send_whatsapp_message", code, status, "(#131026) Message undeliverable", "req-perm")

    final = message_deliver(message.pk)

    assert final.status == "failed" and final.attempts == 1
    assert final.error_code == code
    assert final.error_details == {
        "code": code,
        "message": "(#131026) Message undeliverable",
        "requestId": "req-perm",
        "permanent": True,
        "service": "socialmessaging",
        "attempts": 1,
    }
    assert [b["originalMessageId"] for b in _dlq_bodies()] == [str(message.pk)]


def test_a_provider_that_cannot_be_reached_is_a_transient_error(make_contact, live, monkeypatch):
    # given: the SMS endpoint is a closed local port (connection refused)
    monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "http://127.0.0.1:9")
    aws.reset_clients()
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)

    try:
        with pytest.raises(DeliveryDeferred):
            message_deliver(message.pk)
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2")
        aws.reset_clients()

    message.refresh_from_db()
    assert message.error_details["lastError"]["code"] == "EndpointConnectionError"
    assert message.error_details["lastError"]["permanent"] is False


def test_the_task_retries_a_throttled_send_and_then_sends_it(make_contact, live, sms_stub, monkeypatch):
    # apply() runs the task in-process, and its retries too (without waiting for their countdown)
    monkeypatch.setitem(deliver_message.app.conf, "task_eager_propagates", False)
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    sms_stub.error("send_text_message", "ThrottlingException", 400)
    sms_stub.error("send_text_message", "InternalServerException", 500)
    sms_stub.expect("send_text_message", {"MessageId": "sms-after-retries"})

    result = deliver_message.apply(args=[str(message.pk)])

    assert result.get() == "sent"
    sms_stub.done()
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 3
    assert message.provider_message_id == "sms-after-retries"


def test_a_crash_that_is_not_a_provider_error_fails_the_message_visibly(make_contact, monkeypatch, empty_outbound_dlq):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("messaging.outbound.deliver._provider_send", broken)

    result = deliver_message.apply(args=[str(message.pk)], throw=False)

    assert result.failed() and isinstance(result.result, RuntimeError)
    message.refresh_from_db()
    assert message.status == "failed" and message.error_code == "INTERNAL_ERROR"
    assert "database went away" in message.error_details["message"]
    assert DLQMessage.objects.filter(original_message_id=str(message.pk)).exists()


def _failed_message(make_contact, whatsapp_stub) -> Message:
    contact = make_contact(whatsapp=True, window=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hello"), enqueue=False)
    whatsapp_stub.error("send_whatsapp_message", "ValidationException", 400)
    return message_deliver(message.pk)


def test_a_dlq_replay_sends_a_new_message_through_the_gate_once(
    make_contact, live, whatsapp_stub, empty_outbound_dlq, django_capture_on_commit_callbacks
):
    failed = _failed_message(make_contact, whatsapp_stub)

    with django_capture_on_commit_callbacks() as callbacks:
        replay = handle_outbound_dlq_payload({"messageId": str(failed.pk)})
        again = handle_outbound_dlq_payload({"messageId": str(failed.pk)})  # a duplicate DLQ copy

    failed.refresh_from_db()
    assert failed.status == "failed"  # status never moves back
    assert replay.pk != failed.pk and replay.replay_of_id == failed.pk
    assert (replay.status, replay.content, replay.channel) == ("queued", "Hello", "whatsapp")
    assert again.pk == replay.pk
    assert len(callbacks) == 1


def test_a_dlq_replay_is_refused_when_consent_was_withdrawn(make_contact, live, whatsapp_stub, empty_outbound_dlq):
    failed = _failed_message(make_contact, whatsapp_stub)
    failed.contact.opt_in_whatsapp = False
    failed.contact.save()

    with pytest.raises(SafetyRefusal) as refused:
        handle_outbound_dlq_payload({"messageId": str(failed.pk)})

    assert refused.value.code == "OPT_IN_REQUIRED"
    assert not Message.objects.filter(replay_of=failed).exists()


def test_the_outbound_dlq_is_replayed_by_the_shared_mechanism(make_contact, live, whatsapp_stub, empty_outbound_dlq):
    failed = _failed_message(make_contact, whatsapp_stub)

    result = dlq_replay(django_settings.QUEUE_OUTBOUND_DLQ)

    assert result.replayed == [str(failed.pk)]
    assert Message.objects.filter(replay_of=failed, status="queued").count() == 1


def test_an_unknown_message_in_the_dlq_is_an_error_for_the_replay(db):
    with pytest.raises(ValueError):
        handle_outbound_dlq_payload({"messageId": "00000000-0000-0000-0000-000000000000"})


@pytest.fixture
def dynamodb_down(monkeypatch):
    """The rate-limit table unreachable (a closed local port), as during a DynamoDB outage."""
    from messaging.ratelimit import RateLimitTracker

    monkeypatch.setattr(RateLimitTracker.Meta, "host", "http://127.0.0.1:9")
    monkeypatch.setattr(RateLimitTracker.Meta, "max_retry_attempts", 0, raising=False)
    RateLimitTracker._connection = None
    yield
    monkeypatch.undo()
    RateLimitTracker._connection = None


def test_a_rate_limit_store_outage_defers_the_send_without_spending_an_attempt(make_contact, live, dynamodb_down):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)

    with pytest.raises(DeliveryDeferred):
        message_deliver(message.pk)

    message.refresh_from_db()
    assert message.status == "queued" and message.attempts == 0
    assert message.error_details["infrastructureRetries"] == 1
    assert message.error_details["lastError"]["code"] == "INFRASTRUCTURE_ERROR"


def test_a_long_outage_fails_the_message_visibly_and_dead_letters_it(
    make_contact, live, dynamodb_down, empty_outbound_dlq
):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    Message.objects.filter(pk=message.pk).update(error_details={"infrastructureRetries": 5})

    final = message_deliver(message.pk)

    assert final.status == "failed" and final.error_code == "INTERNAL_ERROR"
    assert final.error_details["infrastructureRetries"] == 5
    assert [b["originalMessageId"] for b in _dlq_bodies()] == [str(message.pk)]
