"""Fixtures of the inbound tests (imported by test_inbound_*, test_sns_*, test_dlq_*)."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.stub import ANY, Stubber
from django.conf import settings as django_settings

from messaging import sns
from messaging.tests import sns_signing
from messaging.tests.sns_signing import (
    FIXTURE_CERT_URL,
    FIXTURE_TOPIC,
    FIXTURES,
    LOCAL_CERT_URL,
    PHONE_NUMBER_ID,
    SigningIdentity,
)
from wecare import aws

_IDENTITY: SigningIdentity | None = None


def signing_identity() -> SigningIdentity:
    """One locally made key + certificate per test session (RSA key generation takes a moment)."""
    global _IDENTITY
    if _IDENTITY is None:
        _IDENTITY = SigningIdentity.create()
    return _IDENTITY


@pytest.fixture
def sns_setup(settings):
    """Verification against local certificates: the fixtures' test certificate and one made here."""
    settings.SNS_TOPIC_ARN = FIXTURE_TOPIC
    settings.SNS_CERT_FETCHER = "messaging.tests.sns_signing.fetch_local_certificate"
    settings.SNS_SUBSCRIBE_FETCHER = "messaging.tests.sns_signing.record_subscribe_url"
    settings.SNS_MAX_MESSAGE_AGE_SECONDS = 0  # the fixtures were signed in 2024/2025
    settings.WHATSAPP_PHONE_NUMBER_IDS = [*django_settings.WHATSAPP_PHONE_NUMBER_IDS, PHONE_NUMBER_ID]
    identity = signing_identity()
    sns_signing.LOCAL_CERTIFICATES.clear()
    sns_signing.LOCAL_CERTIFICATES[FIXTURE_CERT_URL] = (FIXTURES / "test-signing-cert.pem").read_bytes()
    sns_signing.LOCAL_CERTIFICATES[LOCAL_CERT_URL] = identity.cert_pem
    sns_signing.FETCHED.clear()
    sns_signing.SUBSCRIBE_FETCHES.clear()
    sns.certificate_cache.clear()
    sns.fetch_limiter.reset()
    yield identity
    sns.certificate_cache.clear()


def _queue_url(name: str) -> str:
    prefix = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    return aws.client("sqs").get_queue_url(QueueName=prefix + name)["QueueUrl"]


def drain_queue(name: str) -> list[dict]:
    """Receive and delete everything on an SQS queue; return the bodies (Celery's decoded)."""
    sqs = aws.client("sqs")
    url = _queue_url(name)
    bodies = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return bodies
        for message in batch:
            raw = message["Body"]
            try:
                bodies.append(json.loads(base64.b64decode(raw)))
            except ValueError:
                bodies.append(json.loads(raw))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def empty_queues():
    """The inbound queue and DLQ start empty (other tests may have left messages)."""
    for name in (django_settings.QUEUE_INBOUND, django_settings.QUEUE_INBOUND_DLQ):
        drain_queue(name)
    yield


@pytest.fixture
def clean_claims():
    """No de-duplication claim survives from another test (DynamoDB is not rolled back)."""
    from messaging.claims import InboundClaim

    def wipe():
        with InboundClaim.batch_write() as batch:
            for item in InboundClaim.scan():
                batch.delete(item)

    wipe()
    yield
    wipe()


def process_fixture(client, name: str):
    """POST a fixture body through the real endpoint and process the stored event in-process."""
    from messaging import inbound
    from messaging.models import InboundEvent
    from messaging.tests.sns_signing import fixture_body, fixture_headers

    body = fixture_body(name)
    response = client.post(
        "/webhooks/sns/", data=body, content_type="text/plain; charset=UTF-8", **fixture_headers(name)
    )
    assert response.status_code == 200, response.content
    event = InboundEvent.objects.get(sns_message_id=json.loads(body)["MessageId"])
    return inbound.inbound_event_process(event_id=event.pk)


JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg bytes " * 64


class FakeEumMedia:
    """Stands in for AWS's side of GetWhatsAppMessageMedia: it writes the file where AWS writes it,
    i.e. the destination key (a prefix) followed by the media id and an extension. The Stubber
    checks our request against the real API model and gives AWS's answer."""

    def __init__(self, data: bytes = JPEG, extension: str = "jpeg"):
        self.data = data
        self.extension = extension
        self.calls: list[dict] = []
        self.client = aws.client("socialmessaging")
        self.stubber = Stubber(self.client)

    def _write(self, params, **kwargs):
        queued = self.stubber._queue[0] if self.stubber._queue else {}
        if queued.get("operation_name") == "GetWhatsAppMessageMedia" and "error" not in queued:
            destination = params["destinationS3File"]
            key = f"{destination['key']}{params['mediaId']}.{self.extension}"
            aws.client("s3").put_object(Bucket=destination["bucketName"], Key=key, Body=self.data)
        self.calls.append(params)

    def expect(self, media_id: str, mime_type: str = "image/jpeg"):
        self.stubber.add_response(
            "get_whatsapp_message_media",
            {"mimeType": mime_type, "fileSize": len(self.data) // 1024},
            {
                "mediaId": media_id,
                "originationPhoneNumberId": PHONE_NUMBER_ID,
                "destinationS3File": {"bucketName": django_settings.MEDIA_BUCKET, "key": ANY},
            },
        )

    def fail(self, code: str, status: int):
        self.stubber.add_client_error(
            "get_whatsapp_message_media", service_error_code=code, service_message=code, http_status_code=status
        )

    def __enter__(self):
        self.client.meta.events.register_first(
            "provide-client-params.socialmessaging.GetWhatsAppMessageMedia", self._write, unique_id="fake-eum-media"
        )
        self.stubber.activate()
        return self

    def __exit__(self, *exc):
        self.stubber.deactivate()
        self.client.meta.events.unregister(
            "provide-client-params.socialmessaging.GetWhatsAppMessageMedia", unique_id="fake-eum-media"
        )
