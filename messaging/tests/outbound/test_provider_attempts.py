"""Every provider call is a ProviderAttempt row: "was the provider called?" is answered by data."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from accounts.services import user_create
from bulk.models import OUTCOME_UNKNOWN
from bulk.sending import outcome_after_error
from messaging.models import ProviderAttempt
from messaging.services import media_upload, message_deliver, message_send, provider_was_called, send_request_build
from messaging.tests.outbound.conftest import drain_queue

pytestmark = pytest.mark.django_db
Outcome = ProviderAttempt.Outcome


@pytest.fixture
def empty_outbound_dlq():
    drain_queue(django_settings.QUEUE_OUTBOUND_DLQ)


def _queued(**kwargs):
    return message_send(send_request_build(**kwargs), enqueue=False)


def _response(message_id: str, request_id: str, key: str = "MessageId") -> dict:
    return {key: message_id, "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": 200}}


def test_a_live_send_is_one_attempt_row_with_its_ids_outcome_and_duration(make_contact, live, sms_stub):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    sms_stub.stubber.add_response("send_text_message", _response("sms-1", "req-1"))

    message_deliver(message.pk)

    [attempt] = ProviderAttempt.objects.filter(message=message)
    assert (attempt.service, attempt.operation, attempt.outcome) == (
        "pinpoint-sms-voice-v2",
        "SendTextMessage",
        Outcome.SUCCEEDED,
    )
    assert (attempt.provider_request_id, attempt.provider_message_id) == ("req-1", "sms-1")
    assert attempt.finished_at >= attempt.started_at and attempt.duration_ms is not None
    assert (attempt.error_code, attempt.error_text) == ("", "")
    assert provider_was_called(message.pk)


def test_a_transient_error_and_its_retry_are_two_rows(make_contact, live, sms_stub):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    sms_stub.error("send_text_message", "InternalServerException", 500, "try later", "req-bad")
    sms_stub.stubber.add_response("send_text_message", _response("sms-2", "req-good"))

    with pytest.raises(Exception, match="deferred"):
        message_deliver(message.pk)
    message_deliver(message.pk)

    first, second = ProviderAttempt.objects.filter(message=message)
    assert (first.outcome, first.error_code, first.error_text, first.provider_request_id) == (
        Outcome.TRANSIENT_ERROR,
        "InternalServerException",
        "try later",
        "req-bad",
    )
    assert (second.outcome, second.provider_message_id) == (Outcome.SUCCEEDED, "sms-2")
    message.refresh_from_db()
    assert message.attempts == 2 and message.status == "sent"


def test_a_permanent_whatsapp_error_records_metas_own_code(make_contact, live, whatsapp_stub, empty_outbound_dlq):
    message = _queued(contact_id=make_contact(whatsapp=True, window=True).pk, channel="whatsapp", text="Hello")
    whatsapp_stub.error("send_whatsapp_message", "ValidationException", 400, "(#131026) Message undeliverable")

    final = message_deliver(message.pk)

    [attempt] = ProviderAttempt.objects.filter(message=message)
    assert final.status == "failed" and final.error_code == "ValidationException"
    assert (attempt.outcome, attempt.error_code) == (Outcome.PERMANENT_ERROR, "131026")


def test_a_media_message_records_the_upload_and_the_send(make_contact, live, whatsapp_stub):
    contact = make_contact(whatsapp=True, window=True)
    media = media_upload(data=b"%PDF-1.4", content_type="application/pdf", filename="a.pdf")
    message = _queued(contact_id=contact.pk, channel="whatsapp", media=media)
    whatsapp_stub.expect("post_whatsapp_message_media", _response("media-1", "req-up", key="mediaId"))
    whatsapp_stub.expect("send_whatsapp_message", _response("wamid-1", "req-send", key="messageId"))

    message_deliver(message.pk)

    rows = list(ProviderAttempt.objects.filter(message=message).values_list("operation", "outcome"))
    assert rows == [("PostWhatsAppMessageMedia", Outcome.SUCCEEDED), ("SendWhatsAppMessage", Outcome.SUCCEEDED)]
    message.refresh_from_db()
    assert message.attempts == 2


def test_in_dry_run_the_attempt_says_the_provider_was_not_called(make_contact, provider_calls):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")

    final = message_deliver(message.pk)

    [attempt] = ProviderAttempt.objects.filter(message=message)
    assert final.dry_run and attempt.outcome == Outcome.DRY_RUN and attempt.finished_at is not None
    assert provider_calls == [] and not provider_was_called(message.pk)


def test_a_crash_inside_the_call_leaves_a_started_row_and_the_outcome_is_unknown(
    make_contact, live, empty_outbound_dlq
):
    from messaging.channels import provider_client

    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    client = provider_client("pinpoint-sms-voice-v2")

    def worker_dies_mid_call(**kwargs):
        raise RuntimeError("worker lost its connection mid-call")

    client.meta.events.register("before-call.pinpoint-sms-voice-v2.SendTextMessage", worker_dies_mid_call)
    try:
        with pytest.raises(RuntimeError):
            message_deliver(message.pk)
    finally:
        client.meta.events.unregister("before-call.pinpoint-sms-voice-v2.SendTextMessage", worker_dies_mid_call)

    [attempt] = ProviderAttempt.objects.filter(message=message)
    assert attempt.outcome == Outcome.STARTED and "mid-call" in attempt.error_text
    assert provider_was_called(message.pk)
    outcome = outcome_after_error(message, RuntimeError("worker lost its connection mid-call"))
    assert outcome.code == OUTCOME_UNKNOWN


def test_a_crash_before_any_call_is_not_an_unknown_outcome(make_contact, monkeypatch, empty_outbound_dlq):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")

    outcome = outcome_after_error(message, RuntimeError("database went away"))

    assert not provider_was_called(message.pk) and outcome.code == "INTERNAL_ERROR"


def test_the_admin_shows_a_messages_attempts_read_only(client, make_contact, live, sms_stub):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    sms_stub.error("send_text_message", "InternalServerException", 500, "try later", "req-bad")
    sms_stub.stubber.add_response("send_text_message", _response("sms-9", "req-good"))
    with pytest.raises(Exception, match="deferred"):
        message_deliver(message.pk)
    message_deliver(message.pk)
    client.force_login(user_create(email="attempts-admin@example.com", role="Admin"))

    page = client.get(f"/admin/messaging/message/{message.pk}/change/").content.decode()

    assert "Provider attempts" in page
    assert page.count('<td class="field-operation">') == 2 and "SendTextMessage" in page
    assert "Transient error" in page and "Succeeded" in page
    assert "req-bad" in page and "sms-9" in page
    assert 'name="provider_attempts-0-outcome"' not in page  # read-only: no form fields


def _left_by_a_dead_worker(message, outcome: str, **fields) -> None:
    """The message still queued under an expired claim, with the send attempt its worker wrote."""
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import Message

    past = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=message.pk).update(locked_until=past)
    ProviderAttempt.objects.create(
        message=message,
        service="pinpoint-sms-voice-v2",
        operation="SendTextMessage",
        started_at=past,
        outcome=outcome,
        **fields,
    )


def test_a_message_whose_worker_died_during_the_call_is_not_sent_twice(make_contact, live, provider_calls):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    _left_by_a_dead_worker(message, Outcome.STARTED)

    final = message_deliver(message.pk)

    assert provider_calls == []
    assert final.status == "failed" and final.error_code == "OUTCOME_UNKNOWN"


def test_a_message_the_provider_accepted_before_its_worker_died_is_recorded_sent(make_contact, live, provider_calls):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    _left_by_a_dead_worker(message, Outcome.SUCCEEDED, provider_message_id="sms-77", provider_request_id="req-77")

    final = message_deliver(message.pk)

    assert provider_calls == []
    assert (final.status, final.provider_message_id, final.attempts) == ("sent", "sms-77", 1)


def test_a_message_whose_worker_died_after_a_transient_error_is_sent_again(make_contact, live, sms_stub):
    message = _queued(contact_id=make_contact(sms=True).pk, channel="sms", text="Hi")
    _left_by_a_dead_worker(message, Outcome.TRANSIENT_ERROR, error_code="ThrottlingException")
    sms_stub.stubber.add_response("send_text_message", _response("sms-78", "req-78"))

    final = message_deliver(message.pk)

    sms_stub.done()
    assert final.status == "sent" and final.provider_message_id == "sms-78"
