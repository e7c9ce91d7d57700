"""End to end with a real Celery worker on the SQS emulator: signed deliveries through the endpoint,
the outbox relay, processing on the inbound queue, dead-lettering after the retries."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from conftest import wait_until
from messaging.inbound.outbox import inbound_outbox_relay
from messaging.models import DLQMessage, InboundEvent, Message
from messaging.tests.inbound_fixtures import drain_queue
from messaging.tests.sns_signing import eum_envelope, headers_for, inbound_value, sns_notification

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues"),
]

FAST_RETRIES = {"INBOUND_RETRY_DELAY_SECONDS": "1", "INBOUND_TASK_MAX_RETRIES": "1"}


def _post_concurrently(bodies: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses = [0] * len(bodies)

    def post(index: int, body: dict) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = client.post(
                "/webhooks/sns/", data=json.dumps(body), content_type="text/plain; charset=UTF-8", **headers_for(body)
            )
            statuses[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_ten_concurrent_deliveries_of_one_message_store_one_message(sns_setup, celery_worker_factory, settings):
    settings.INBOUND_EVENTS_PER_TASK = 1  # one task per event, so four worker processes race
    wamid = f"wamid.e2e-{uuid.uuid4().hex}"
    envelope = eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": "hello"}}))
    redelivered = sns_setup.sign(sns_notification(envelope))  # SNS retrying one message: same MessageId
    resent = [sns_setup.sign(sns_notification(envelope)) for _ in range(5)]  # Meta resending: new MessageIds
    worker = celery_worker_factory(queues=[settings.QUEUE_INBOUND], concurrency=4, extra_env=FAST_RETRIES)

    statuses = _post_concurrently([redelivered] * 5 + resent)

    assert statuses == [200] * 10
    assert InboundEvent.objects.count() == 6
    assert inbound_outbox_relay() == 6
    wait_until(
        lambda: not InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED).exists(),
        timeout=90,
        message=f"every event processed\n{worker.log()[-3000:]}",
    )
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1
    assert Message.objects.count() == 1
    assert not DLQMessage.objects.exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_event_that_keeps_failing_goes_to_the_inbound_dlq_after_its_retries(sns_setup, celery_worker_factory):
    # WhatsApp (socialmessaging) unreachable: the media cannot be fetched, a transient failure.
    extra_env = {**FAST_RETRIES, "AWS_ENDPOINT_URL_SOCIALMESSAGING": f"http://127.0.0.1:{_closed_port()}"}
    worker = celery_worker_factory(queues=[settings.QUEUE_INBOUND], concurrency=1, extra_env=extra_env)
    wamid = f"wamid.e2e-media-{uuid.uuid4().hex}"
    message = {"id": wamid, "type": "image", "image": {"mime_type": "image/jpeg", "id": "123456"}}
    body = sns_setup.sign(sns_notification(eum_envelope(inbound_value(message))))

    assert _post_concurrently([body]) == [200]
    assert inbound_outbox_relay() == 1

    event = InboundEvent.objects.get()
    wait_until(
        lambda: InboundEvent.objects.filter(pk=event.pk, status=InboundEvent.Status.FAILED).exists(),
        timeout=90,
        message=f"the event dead-lettered\n{worker.log()[-3000:]}",
    )
    event.refresh_from_db()
    assert "MediaUnavailable" in event.error
    row = DLQMessage.objects.get()
    assert (row.queue_name, row.original_message_id, row.payload) == (
        settings.QUEUE_INBOUND_DLQ,
        body["MessageId"],
        body,
    )
    assert row.status == DLQMessage.Status.PENDING
    (parked,) = wait_until(lambda: drain_queue(settings.QUEUE_INBOUND_DLQ), timeout=30, message="the DLQ message")
    assert parked["originalMessageId"] == body["MessageId"]
    assert parked["payload"] == body
    assert "MediaUnavailable" in parked["error"]
    # Two attempts (the first and INBOUND_TASK_MAX_RETRIES=1 retry), and the message itself was kept.
    assert worker.log().count("inbound event") >= 2
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1
