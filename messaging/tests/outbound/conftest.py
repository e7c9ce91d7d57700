"""Fixtures of the outbound tests: contacts in every state, templates, provider stubs.

socialmessaging and pinpoint-sms-voice-v2 are not emulated by moto: their calls are checked with
botocore's Stubber on the very client the code uses (parameters validated against the service
model). SES, S3, DynamoDB, SQS and SNS are the moto_server of the run.
"""

from __future__ import annotations

import itertools
import json
import secrets
import uuid
from datetime import timedelta

import pytest
import requests
from botocore.stub import Stubber
from django.conf import settings as django_settings
from django.utils import timezone

from contacts.models import Contact
from messaging.channels import provider_client
from messaging.models import TemplateStatus, WhatsAppTemplate
from wecare import aws

_numbers = itertools.count(1)


def new_phone_number_id() -> str:
    return "phone-number-id-" + secrets.token_hex(16)


@pytest.fixture(autouse=True)
def outbound_settings(settings):
    """Fresh allowlisted numbers per test, so DynamoDB tier counters and buckets never carry over."""
    settings.WHATSAPP_PHONE_NUMBER_IDS = [new_phone_number_id(), new_phone_number_id()]
    settings.SEND_MODE = "DRY_RUN"
    settings.OUTBOUND_RETRY_BASE_SECONDS = 2.0
    # Generous limits: tests that are about rate limits set their own.
    settings.RATE_LIMIT_SMS = settings.RATE_LIMIT_EMAIL = 1000.0
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = settings.RATE_LIMIT_WHATSAPP_MEDIA = 1000.0
    settings.RATE_LIMIT_VOICE = settings.RATE_LIMIT_RCS = 1000.0
    settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"
    return settings


@pytest.fixture
def live(settings):
    """LIVE send mode for this test (the settings module refuses LIVE outside production at start-up;
    here the provider calls go to a Stubber or to moto, never anywhere real)."""
    settings.SEND_MODE = "LIVE"
    return settings


@pytest.fixture
def make_contact(db):
    """``make_contact(whatsapp=True, window=True)``: a contact straight in the table (a factory)."""

    def make(
        *,
        whatsapp: bool = False,
        sms: bool = False,
        email_opt_in: bool = False,
        voice: bool = False,
        rcs: bool = False,
        phone: str | None = "auto",
        email: str | None = "auto",
        window: bool | None = None,
        name: str = "Asha",
    ) -> Contact:
        n = next(_numbers)
        suffix = uuid.uuid4().hex[:8]
        if phone == "auto":
            phone = f"+9199{int(suffix, 16) % 10**8:08d}"
        if email == "auto":
            email = f"asha{n}-{suffix}@example.org"
        last_inbound = None
        if window is True:
            last_inbound = timezone.now() - timedelta(hours=1)
        elif window is False:
            last_inbound = timezone.now() - timedelta(hours=30)
        return Contact.objects.create(
            name=name,
            phone=phone,
            email=email,
            opt_in_whatsapp=whatsapp,
            opt_in_sms=sms,
            opt_in_email=email_opt_in,
            opt_in_voice=voice,
            opt_in_rcs=rcs,
            last_inbound_message_at=last_inbound,
        )

    return make


@pytest.fixture
def make_template(db):
    def make(
        name: str = "order_update",
        body: str = "Hi {{1}}, your order #{{2}} has shipped.",
        *,
        language: str = "en_US",
        status: str = TemplateStatus.APPROVED,
        category: str = "UTILITY",
        parameter_format: str = "positional",
        components: list | None = None,
    ) -> WhatsAppTemplate:
        return WhatsAppTemplate.objects.create(
            name=name,
            language=language,
            body=body,
            status=status,
            category=category,
            parameter_format=parameter_format,
            components=components if components is not None else [{"type": "BODY", "text": body}],
        )

    return make


class ProviderStub:
    """A Stubber on the provider client of one service, plus the decoded WhatsApp payloads sent."""

    def __init__(self, service: str):
        self.client = provider_client(service)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def expect(self, operation: str, response: dict, expected_params: dict | None = None) -> None:
        self.stubber.add_response(operation, response, expected_params)

    def error(self, operation: str, code: str, status: int, message: str = "error", request_id: str = "req-1"):
        self.stubber.add_client_error(
            operation,
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            response_meta={"RequestId": request_id},
        )

    def done(self) -> None:
        self.stubber.assert_no_pending_responses()

    def close(self) -> None:
        self.stubber.deactivate()


@pytest.fixture
def whatsapp_stub():
    stub = ProviderStub("socialmessaging")
    yield stub
    stub.close()


@pytest.fixture
def sms_stub():
    stub = ProviderStub("pinpoint-sms-voice-v2")
    yield stub
    stub.close()


@pytest.fixture
def provider_calls():
    """Every provider API call made, as (service, operation), whatever answers it."""
    calls: list[tuple[str, str]] = []
    clients = [provider_client(s) for s in ("socialmessaging", "pinpoint-sms-voice-v2", "sesv2")]

    def record(model, **kwargs):
        calls.append((model.service_model.service_name, model.name))

    for client in clients:
        # before-parameter-build runs for every call, and every handler runs (a Stubber answers
        # in before-call, where the first answer stops the event).
        client.meta.events.register("before-parameter-build.*.*", record, unique_id="outbound-test-recorder")
    yield calls
    for client in clients:
        client.meta.events.unregister("before-parameter-build.*.*", unique_id="outbound-test-recorder")


def decoded(message_param) -> dict:
    """The Meta message JSON inside SendWhatsAppMessage's ``message`` blob."""
    if isinstance(message_param, bytes | bytearray):
        return json.loads(message_param.decode("utf-8"))
    return json.loads(message_param)


def moto_data() -> dict:
    endpoint = django_settings.AWS_ENDPOINT_URL or aws.client("s3").meta.endpoint_url
    return requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()


def sent_emails() -> list[dict]:
    return moto_data().get("ses", {}).get("Message", [])


def drain_queue(name: str) -> list[dict]:
    """Receive and delete everything on an SQS queue (PurgeQueue is limited to once a minute)."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in batch:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies
