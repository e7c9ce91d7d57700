"""From the API call to "sent" through a real Celery worker on the SQS emulator (DRY_RUN: the worker
runs with the test environment's settings, and LIVE is refused outside production)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.services import user_create
from conftest import wait_until
from messaging.models import Message
from messaging.tests.outbound.conftest import drain_queue


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_message_goes_from_the_api_to_sent_through_a_real_worker(celery_worker_factory, make_contact, settings):
    drain_queue(django_settings.QUEUE_OUTBOUND)
    celery_worker_factory(
        queues=[settings.QUEUE_OUTBOUND],
        concurrency=2,
        extra_env={"WHATSAPP_PHONE_NUMBER_IDS": ",".join(settings.WHATSAPP_PHONE_NUMBER_IDS), "SEND_MODE": "DRY_RUN"},
    )
    contact = make_contact(whatsapp=True, window=True)
    client = APIClient()
    client.force_authenticate(user_create(email="worker-e2e@example.com", role="Operator"))

    response = client.post(
        "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hello"}, format="json"
    )

    assert response.status_code == 202
    message_id = response.json()["messageId"]
    wait_until(lambda: Message.objects.filter(pk=message_id, status="sent").exists(), timeout=60, message="status sent")
    message = Message.objects.get(pk=message_id)
    assert message.dry_run is True and message.attempts == 1
    assert message.origination_phone_number_id == settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    body = client.get(f"/api/messages/{message_id}/").json()
    assert (body["status"], body["dryRun"]) == ("sent", True)
