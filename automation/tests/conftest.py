"""Fixtures of the AI-suggestion tests: contacts with a conversation, the knowledge base, Bedrock.

Bedrock Agent Runtime is not emulated by moto: Retrieve is checked with botocore's Stubber, and
InvokeAgent (an event stream Stubber cannot produce) with tests/fake_bedrock.py, a local server
speaking the real event-stream protocol. SQS, SNS and DynamoDB are the run's moto_server.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from automation import bedrock
from automation.models import KnowledgeEntry
from automation.tests.fake_bedrock import FakeBedrockAgent
from contacts.models import Contact
from messaging.models import Direction, Message, MessageStatus
from wecare import aws

_phones = itertools.count(1)

FAQ = [
    ("What are your opening hours on Sunday?", "We are open on Sundays from 10:00 to 14:00.", "hours"),
    ("How do I get a refund?", "Refunds are paid within 30 days to the original card.", "refund, payment"),
    ("Do you ship to Mumbai?", "Yes, delivery to Mumbai takes 3 to 5 working days.", "shipping, delivery"),
    ("How can I reset my password?", "Use 'Forgot password' on the sign-in page; the link is valid for one hour.", ""),
]


@pytest.fixture(autouse=True)
def ai_settings(settings, monkeypatch):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["phone-number-id-" + secrets.token_hex(16) for _ in range(2)]
    settings.SEND_MODE = "DRY_RUN"
    settings.BEDROCK_AGENT_ALIAS_ID = ""  # the local knowledge base unless a test turns Bedrock on
    settings.AI_BREAKER_FAILURES = 3
    settings.AI_KB_MIN_SCORE = 1.0
    settings.RATE_LIMIT_SMS = settings.RATE_LIMIT_EMAIL = 1000.0
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = settings.RATE_LIMIT_WHATSAPP_MEDIA = 1000.0
    monkeypatch.setattr(bedrock, "RETRY_BASE_SECONDS", 0.0)
    return settings


@pytest.fixture
def make_contact(db):
    def make(*, window: bool = True, opt_in: bool = True, name: str = "Asha Rao") -> Contact:
        return Contact.objects.create(
            name=name,
            phone=f"+9198{next(_phones):08d}",
            opt_in_whatsapp=opt_in,
            opt_in_sms=opt_in,
            last_inbound_message_at=timezone.now() - timedelta(hours=1 if window else 30),
        )

    return make


@pytest.fixture
def inbound(ai_settings):
    """``inbound(contact, "text")``: an inbound WhatsApp text stored as the inbound side stores it."""

    def make(contact: Contact, text: str, *, ago: timedelta = timedelta(minutes=5), channel: str = "whatsapp"):
        at = timezone.now() - ago
        message = Message.objects.create(
            contact=contact,
            channel=channel,
            direction=Direction.INBOUND,
            content=text,
            status=MessageStatus.RECEIVED,
            origination_phone_number_id=ai_settings.WHATSAPP_PHONE_NUMBER_IDS[0] if channel == "whatsapp" else "",
            created_at=at,
        )
        Contact.objects.filter(pk=contact.pk).update(last_inbound_message_at=at)
        contact.refresh_from_db()
        return message

    return make


@pytest.fixture
def faq(db):
    return KnowledgeEntry.objects.bulk_create(KnowledgeEntry(question=q, answer=a, tags=t) for q, a, t in FAQ)


@pytest.fixture
def fake_bedrock(ai_settings, monkeypatch):
    """Bedrock configured, its endpoint the local fake (InvokeAgent's event stream and Retrieve)."""
    ai_settings.BEDROCK_AGENT_ALIAS_ID = "ALIAS12345"
    with FakeBedrockAgent() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", fake.url)
        aws.reset_clients()
        yield fake
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME")
    aws.reset_clients()


@pytest.fixture
def retrieve_stub(ai_settings):
    """botocore's Stubber on the very client automation.bedrock uses."""
    client = bedrock._client()
    stubber = Stubber(client)
    stubber.activate()
    yield stubber
    stubber.deactivate()
