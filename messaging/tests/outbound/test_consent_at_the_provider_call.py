"""Consent is read once more right before the provider call: an opt-out committed (by someone else,
on another connection) while a send waits for a rate-limit token or a media upload stops that send."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from contacts.models import Contact
from contacts.services import contact_set_opt_in
from messaging import ratelimit
from messaging.channels import provider_client
from messaging.models import ProviderAttempt, SafetyRefusalCount
from messaging.services import media_upload, message_deliver, message_send, send_request_build


def _opt_out_elsewhere(contact: Contact, channel: str, *, after: float = 0.0) -> threading.Thread:
    """Another process's opt-out: its own connection, its own committed transaction."""

    def run() -> None:
        time.sleep(after)
        try:
            with transaction.atomic():
                contact_set_opt_in(contact=contact, channel=channel, value=False, source="api")
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_committed_while_the_send_waits_for_a_token_stops_it(
    make_contact, live, sms_stub, settings, monkeypatch
):
    # given: an SMS bucket (of this test alone) of 1 message per 4 s whose token was just taken, so the
    # next send waits for it: long enough that a slow machine cannot let the token refill unnoticed
    settings.RATE_LIMIT_MAX_WAIT_SECONDS = 10.0
    bucket = ratelimit.Bucket(key=f"sms-consent-test-{uuid.uuid4()}", rate=0.25, capacity=1.0)
    monkeypatch.setattr(ratelimit, "sms_buckets", lambda: [bucket])
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    ratelimit.rate_limit_acquire(ratelimit.sms_buckets())
    # ... and the contact opts out (another connection, committed) while the worker sleeps for it
    waits: list[float] = []

    def sleep_while_the_contact_opts_out(seconds: float) -> None:
        if not waits:
            _opt_out_elsewhere(contact, "sms").join()
        waits.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(
        ratelimit,
        "time",
        SimpleNamespace(sleep=sleep_while_the_contact_opts_out, monotonic=time.monotonic, time_ns=time.time_ns),
    )

    # when
    final = message_deliver(message.pk)

    # then: the send waited, saw the opt-out and never reached the provider (the stub has no answer)
    assert waits and sum(waits) > 0.1
    assert final.status == "failed" and final.error_code == "OPT_IN_REQUIRED"
    assert final.error_details["stage"] == "provider call"
    assert not ProviderAttempt.objects.filter(message=message).exists()
    assert SafetyRefusalCount.objects.get(code="OPT_IN_REQUIRED", channel="sms").count == 1
    sms_stub.done()


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_committed_during_the_media_upload_stops_the_send(make_contact, live, whatsapp_stub):
    contact = make_contact(whatsapp=True, window=True)
    media = media_upload(data=b"\xff\xd8\xff\xe0jpeg", content_type="image/jpeg", filename="p.jpg")
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", media=media), enqueue=False)
    whatsapp_stub.expect("post_whatsapp_message_media", {"mediaId": "media-7"})
    client = provider_client("socialmessaging")

    def opt_out_while_uploading(**kwargs) -> None:
        _opt_out_elsewhere(contact, "whatsapp").join()

    event = "before-parameter-build.socialmessaging.PostWhatsAppMessageMedia"
    client.meta.events.register(event, opt_out_while_uploading, unique_id="opt-out-during-upload")
    try:
        final = message_deliver(message.pk)
    finally:
        client.meta.events.unregister(event, unique_id="opt-out-during-upload")

    whatsapp_stub.done()  # the upload was made; no send was (the stub holds no answer for one)
    assert final.status == "failed" and final.error_code == "OPT_IN_REQUIRED"
    operations = list(ProviderAttempt.objects.filter(message=message).values_list("operation", flat=True))
    assert operations == ["PostWhatsAppMessageMedia"]


@pytest.mark.django_db(transaction=True)
def test_a_contact_deleted_while_the_send_waits_is_not_sent_to(make_contact, provider_calls, monkeypatch):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    real_acquire = ratelimit.rate_limit_acquire

    def acquire_while_someone_deletes(buckets, **kwargs):
        def delete() -> None:
            try:
                Contact.objects.filter(pk=contact.pk).update(deleted_at=message.created_at)
            finally:
                connection.close()

        thread = threading.Thread(target=delete)
        thread.start()
        thread.join()
        return real_acquire(buckets, **kwargs)

    monkeypatch.setattr(ratelimit, "rate_limit_acquire", acquire_while_someone_deletes)

    final = message_deliver(message.pk)

    assert final.status == "failed" and final.error_code == "CONTACT_NOT_FOUND"
    assert provider_calls == [] and not ProviderAttempt.objects.filter(message=message).exists()


@pytest.mark.django_db
def test_the_recheck_costs_one_query(make_contact, django_assert_num_queries):
    from messaging.safety import safety_consent_recheck

    contact = make_contact(whatsapp=True)
    request = send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hi", origination_phone_number_id="x")

    with django_assert_num_queries(1):
        safety_consent_recheck(request)


@pytest.mark.django_db
def test_the_attempt_row_and_the_consent_check_are_one_statement(make_contact, django_assert_num_queries):
    from messaging.channels import sms as sms_channel
    from messaging.models import Message
    from messaging.outbound.attempts import attempt_start

    contact = make_contact(sms=True)
    request = send_request_build(contact_id=contact.pk, channel="sms", text="Hi")
    message = Message.objects.create(contact=contact, channel="sms", content="Hi")
    provider_request = sms_channel.send_request(to=contact.phone, body="Hi")

    with django_assert_num_queries(1):
        started = attempt_start(message, provider_request, while_consented=request)
    Contact.objects.filter(pk=contact.pk).update(opt_in_sms=False)
    refused = attempt_start(message, provider_request, while_consented=request)

    assert started is not None and refused is None
    [row] = ProviderAttempt.objects.filter(message=message)
    assert row.pk == started.pk and row.outcome == "started" and row.operation == "SendTextMessage"
