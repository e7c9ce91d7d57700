"""Every upload has a size limit checked before the file is read: the DM composer's media, the bulk
CSV (page and API), and any request body at all (413 from the Content-Length alone)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

import bulk.serializers
import bulk.views
from accounts.services import user_create
from bulk.models import BulkJob
from contacts.models import Contact
from messaging.channels import whatsapp
from messaging.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client():
    client = Client()
    client.force_login(user_create(email="ops@example.com", role="Operator"))
    return client


@pytest.fixture
def contact():
    return Contact.objects.create(
        name="Asha", phone="+919876543210", opt_in_whatsapp=True, last_inbound_message_at=timezone.now()
    )


def test_a_dm_media_file_over_the_whatsapp_limit_is_refused_with_a_clear_error(operator_client, contact, monkeypatch):
    monkeypatch.setattr(whatsapp, "MEDIA_MAX_BYTES", 1024)
    upload = SimpleUploadedFile("big.pdf", b"%PDF" + b"x" * 4096, content_type="application/pdf")

    response = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "text", "text": "", "media": upload}
    )

    assert response.status_code == 200
    assert "the largest WhatsApp file is 100 MB" in response.content.decode()
    assert not Message.objects.exists()


def test_the_dm_api_refuses_a_media_file_over_the_limit(contact, monkeypatch):
    monkeypatch.setattr(whatsapp, "MEDIA_MAX_BYTES", 1024)
    client = APIClient()
    client.force_authenticate(user_create(email="api@example.com", role="Operator"))
    upload = SimpleUploadedFile("big.pdf", b"%PDF" + b"x" * 4096, content_type="application/pdf")

    response = client.post(
        "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "media": upload}, format="multipart"
    )

    assert response.status_code == 400
    assert "the largest WhatsApp file is 100 MB" in str(response.json())
    assert not Message.objects.exists()


def test_a_bulk_csv_over_the_limit_is_refused_on_the_page(operator_client, monkeypatch):
    monkeypatch.setattr(bulk.views, "CSV_MAX_BYTES", 1024)
    upload = SimpleUploadedFile("people.csv", b"phone\n" + b"+919876543210\n" * 200, content_type="text/csv")

    response = operator_client.post(
        "/bulk/new/", {"channel": "whatsapp", "source": "csv", "kind": "text", "text": "Hi", "csv": upload}
    )

    assert response.status_code == 200
    assert "the limit is 1024" in response.content.decode()
    assert not BulkJob.objects.exists()


def test_a_bulk_csv_over_the_limit_is_refused_by_the_api(monkeypatch):
    monkeypatch.setattr(bulk.serializers, "MAX_CSV_BYTES", 1024)
    client = APIClient()
    client.force_authenticate(user_create(email="api@example.com", role="Operator"))
    upload = SimpleUploadedFile("people.csv", b"phone\n" + b"+919876543210\n" * 200, content_type="text/csv")

    response = client.post("/api/bulk/jobs/", {"channel": "sms", "text": "Hi", "csv": upload}, format="multipart")

    assert response.status_code == 400
    assert "The CSV file may be at most" in str(response.json())
    assert not BulkJob.objects.exists()


def test_any_request_body_over_the_upload_limit_is_refused_from_its_content_length(operator_client, contact, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    upload = SimpleUploadedFile("big.pdf", b"x" * (2 * 1024 * 1024), content_type="application/pdf")

    response = operator_client.post(f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "media": upload})

    assert response.status_code == 413
    assert "the limit here is 1.0 MB" in response.content.decode()
    assert not Message.objects.exists()
