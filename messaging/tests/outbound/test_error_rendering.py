"""One error vocabulary (wecare.errors.PlatformError), rendered the same way by the API and the pages."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.services import user_create
from bulk.errors import BulkStateError
from messaging.channels import ChannelError
from messaging.models import Message
from messaging.ratelimit import RateLimited
from messaging.safety import SafetyRefusal
from messaging.services import DeliveryDeferred
from wecare import aws
from wecare.errors import PlatformError, RetryLater, StorageUnavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_down():
    """The media bucket answers 503 to every upload."""
    stubber = Stubber(aws.client("s3"))
    for _ in range(3):
        stubber.add_client_error("put_object", service_error_code="ServiceUnavailable", http_status_code=503)
    stubber.activate()
    yield stubber
    stubber.deactivate()


def _jpeg() -> SimpleUploadedFile:
    return SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0fakejpeg", content_type="image/jpeg")


def test_a_storage_failure_is_503_with_the_same_code_in_the_api_and_on_the_page(make_contact, s3_down, operator_client):
    contact = make_contact(whatsapp=True, window=True)
    api = APIClient()
    api.force_authenticate(user_create(email="errors-operator@example.com", role="Operator"))

    api_response = api.post(
        "/api/messages/",
        {"contactId": str(contact.pk), "channel": "whatsapp", "text": "A photo", "media": _jpeg()},
        format="multipart",
    )
    page_response = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "text", "text": "A photo", "media": _jpeg()}
    )

    assert api_response.status_code == page_response.status_code == 503
    assert api_response.json()["code"] == "MEDIA_STORE_UNAVAILABLE"
    assert 'data-code="MEDIA_STORE_UNAVAILABLE"' in page_response.content.decode()
    assert api_response["Retry-After"] == page_response["Retry-After"] == "30"
    assert Message.objects.count() == 0


def test_a_refusal_in_the_api_is_rendered_by_the_one_exception_handler(make_contact):
    contact = make_contact(whatsapp=True, window=False)
    api = APIClient()
    api.force_authenticate(user_create(email="errors-operator2@example.com", role="Operator"))

    response = api.post("/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hi"})

    assert response.status_code == 422
    assert response.json()["code"] == "TEMPLATE_REQUIRED" and "24-hour window" in response.json()["detail"]


def test_the_platforms_errors_share_one_base_with_stable_codes():
    cases = [
        (SafetyRefusal("OPT_IN_REQUIRED", "no"), "OPT_IN_REQUIRED", 422, True),
        (ChannelError("bad number", permanent=True, code="ValidationException"), "ValidationException", 502, True),
        (ChannelError("slow", permanent=False, code="Throttling"), "Throttling", 502, False),
        (StorageUnavailable("S3 down"), "STORAGE_UNAVAILABLE", 503, False),
        (DeliveryDeferred(1.5, "rate limit"), "DELIVERY_DEFERRED", 503, False),
        (RateLimited("sms", 0.2), "RATE_LIMITED", 503, False),
        (BulkStateError("already completed"), "INVALID_STATE", 409, True),
    ]
    for error, code, status, permanent in cases:
        assert isinstance(error, PlatformError)
        assert (error.code, error.http_status, error.permanent) == (code, status, permanent), error
    assert all(isinstance(error, RetryLater) for error, *_ in cases if not error.permanent and error.http_status == 503)


def test_every_retry_later_error_says_when_to_try_again():
    from bulk.execution import LeaseHeld
    from messaging.claims import ClaimBusy
    from wecare.errors import retry_after_header

    assert DeliveryDeferred(1.5, "rate limit").retry_after == 1.5
    assert RateLimited("sms", 0.2).retry_after == 0.2
    assert LeaseHeld("chunk-1", 12.0).retry_after == 12.0
    assert isinstance(ClaimBusy("wamid.1", 0), RetryLater)
    assert retry_after_header(LeaseHeld("chunk-1", 12.4)) == "12"
    assert retry_after_header(StorageUnavailable("S3 down")) == "30"
