"""Fixtures of the delivery-feedback tests: contacts, sent messages, and posting signed SNS notifications
through the real endpoint, then processing the stored event as the inbound worker does."""

from __future__ import annotations

import itertools
import json

import pytest
from django.test import Client

from contacts.models import ConsentSource
from contacts.services import contact_create
from messaging import inbound
from messaging.models import InboundEvent, Message, MessageStatus, MessageType
from messaging.tests.sns_signing import headers_for, sns_notification

_numbers = itertools.count(1)


@pytest.fixture
def make_contact(db):
    def make(*, opt_ins=None, **kwargs):
        n = next(_numbers)
        kwargs.setdefault("phone", f"+9198{n:08d}")
        kwargs.setdefault("email", f"reader{n}@example.org")
        return contact_create(opt_ins=opt_ins or {}, source=ConsentSource.API, **kwargs)

    return make


@pytest.fixture
def sent_message(db):
    """``sent_message(contact, channel)``: an outbound message the provider accepted (status sent)."""

    def make(contact, channel: str, *, provider_message_id: str = "", **fields) -> Message:
        defaults = {
            "email": {"message_type": MessageType.EMAIL, "subject": "News", "content": "Hello"},
            "sms": {"message_type": MessageType.TEXT, "content": "Hello"},
            "whatsapp": {"message_type": MessageType.TEMPLATE, "template_name": "spring_sale"},
        }[channel]
        return Message.objects.create(
            contact=contact,
            channel=channel,
            status=MessageStatus.SENT,
            provider_message_id=provider_message_id or f"provider-{next(_numbers)}",
            **{**defaults, **fields},
        )

    return make


@pytest.fixture
def deliver_sns(sns_setup, empty_queues, django_capture_on_commit_callbacks):
    """``deliver_sns(message_string)``: POST it as a signed SNS Notification to /webhooks/sns/ (CSRF
    enforced, as SNS sends no token), then process the stored event as the inbound worker does.
    Returns (HTTP response, processing summary)."""
    client = Client(enforce_csrf_checks=True)

    def deliver(message: str):
        body = sns_setup.sign(sns_notification(message))
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/webhooks/sns/", data=json.dumps(body), content_type="text/plain; charset=UTF-8", **headers_for(body)
            )
        assert response.status_code == 200, response.content
        event = InboundEvent.objects.get(sns_message_id=body["MessageId"])
        summary = inbound.inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert event.status == InboundEvent.Status.PROCESSED
        return response, summary

    return deliver
