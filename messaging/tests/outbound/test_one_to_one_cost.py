"""One to one, in the steady state: what a message costs from the API request to the provider call.

The target (issue 11): at most 5 SQL statements and at most 1 DynamoDB call per message. Measured on
the real parts: the DRF view, message_send, the Celery task's message_deliver (PostgreSQL, moto's
DynamoDB), the provider in LIVE mode against the local fake of EUM Social.
"""

from __future__ import annotations

import itertools

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.services import user_create
from localdev.fake_socialmessaging import FakeSocialMessaging
from messaging.models import Message
from messaging.services import message_deliver
from wecare import aws

_users = itertools.count(1)


@pytest.fixture
def fake(monkeypatch, live):
    with FakeSocialMessaging(latency=0.0) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", server.url)
        aws.reset_clients()
        yield server
    monkeypatch.undo()
    aws.reset_clients()


@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="the target is PostgreSQL's (production): it writes several rows in one statement, SQLite one by one",
)
@pytest.mark.django_db
def test_a_one_to_one_message_costs_at_most_5_sql_statements_and_1_dynamodb_call_in_the_steady_state(
    make_contact, fake, settings, dynamodb_calls, django_capture_on_commit_callbacks
):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 80.0
    client = APIClient()
    client.force_authenticate(user_create(email=f"one-to-one{next(_users)}@example.com", role="Operator"))
    contacts = [make_contact(whatsapp=True, window=True) for _ in range(41)]

    def send(contact) -> None:
        with django_capture_on_commit_callbacks(execute=False):
            response = client.post(
                "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hi"}, format="json"
            )
        assert response.status_code == 202, response.content
        message_deliver(response.json()["messageId"])

    send(contacts[0])  # warm up: the first token batch, the clients, the caches
    dynamodb_calls.operations.clear()

    with CaptureQueriesContext(connections["default"]) as queries:
        for contact in contacts[1:]:
            send(contact)

    per_message_sql = len(queries) / 40
    per_message_dynamodb = dynamodb_calls.count / 40
    print(f"\none to one: {per_message_sql:.2f} SQL statements, {per_message_dynamodb:.2f} DynamoDB calls per message")
    assert Message.objects.filter(status="sent").count() == 41
    assert len(fake.sends) == 41
    assert per_message_dynamodb <= 1
    assert per_message_sql <= 5
