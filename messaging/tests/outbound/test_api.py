"""/api/messages/: Operators send (202, or the gate's code), Viewers read, expired messages are gone."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_create
from messaging.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_as(db):
    counter = iter(range(1, 1000))

    def make(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            client.force_authenticate(user_create(email=f"{role.lower()}{next(counter)}@example.com", role=role))
        return client

    return make


def test_an_operator_sends_a_whatsapp_text_and_gets_202_with_the_message_id(
    client_as, make_contact, django_capture_on_commit_callbacks
):
    contact = make_contact(whatsapp=True, window=True)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_as("Operator").post(
            "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hello"}, format="json"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    message = Message.objects.get(pk=body["messageId"])
    assert body["status"] == "queued" and body["contactId"] == str(contact.pk)
    assert body["messageType"] == "text" and body["content"] == "Hello" and body["dryRun"] is False
    assert response["Location"] == f"/api/messages/{message.pk}/"
    assert message.requested_by.email.startswith("operator")
    assert len(callbacks) == 1


def test_a_refusal_is_422_with_the_gates_code(client_as, make_contact):
    contact = make_contact(whatsapp=True, window=False)

    response = client_as("Admin").post(
        "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hello"}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["code"] == "TEMPLATE_REQUIRED"
    assert "24-hour" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_an_unknown_contact_is_422_contact_not_found(client_as):
    response = client_as("Operator").post(
        "/api/messages/",
        {"contactId": "00000000-0000-4000-8000-000000000000", "channel": "sms", "text": "Hi"},
        format="json",
    )

    assert response.status_code == 422 and response.json()["code"] == "CONTACT_NOT_FOUND"


@pytest.mark.parametrize(
    "payload",
    [
        {"channel": "sms", "text": "Hi"},
        {"contactId": "not-a-uuid", "channel": "sms", "text": "Hi"},
        {"contactId": "00000000-0000-4000-8000-000000000000", "channel": "fax", "text": "Hi"},
        {"contactId": "00000000-0000-4000-8000-000000000000", "channel": "whatsapp", "text": "Hi", "templateName": "t"},
        {"contactId": "00000000-0000-4000-8000-000000000000", "channel": "whatsapp", "templateParameters": "x"},
    ],
)
def test_a_malformed_request_is_400(client_as, payload):
    response = client_as("Operator").post("/api/messages/", payload, format="json")

    assert response.status_code == 400


def test_a_template_with_parameters_is_sent_through_the_api(client_as, make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template()

    response = client_as("Operator").post(
        "/api/messages/",
        {
            "contactId": str(contact.pk),
            "channel": "whatsapp",
            "templateName": "order_update",
            "templateLanguage": "en_US",
            "templateParameters": ["Asha", "1042"],
        },
        format="json",
    )

    assert response.status_code == 202
    assert response.json()["content"] == "Hi Asha, your order #1042 has shipped."
    assert response.json()["templateParameters"] == ["Asha", "1042"]


def test_template_parameters_that_do_not_match_are_422_template_invalid(client_as, make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template()

    response = client_as("Operator").post(
        "/api/messages/",
        {
            "contactId": str(contact.pk),
            "channel": "whatsapp",
            "templateName": "order_update",
            "templateLanguage": "en_US",
            "templateParameters": {"name": "Asha"},
        },
        format="json",
    )

    assert response.status_code == 422 and response.json()["code"] == "TEMPLATE_INVALID"


def test_a_media_upload_is_stored_and_linked_for_an_hour(client_as, make_contact):
    contact = make_contact(whatsapp=True, window=True)
    upload = SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0fakejpeg", content_type="image/jpeg")

    response = client_as("Operator").post(
        "/api/messages/",
        {"contactId": str(contact.pk), "channel": "whatsapp", "text": "A photo", "media": upload},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["messageType"] == "image" and body["content"] == "A photo"
    [media] = body["media"]
    assert media["contentType"] == "image/jpeg" and media["size"] == 12
    query = parse_qs(urlparse(media["url"]).query)
    expires_in = int(query["X-Amz-Expires"][0]) if "X-Amz-Expires" in query else int(query["Expires"][0]) - time.time()
    assert 3590 <= expires_in <= 3600
    assert requests.get(media["url"], timeout=10).content == b"\xff\xd8\xff\xe0fakejpeg"


def test_a_media_file_whatsapp_refuses_is_422_content_invalid(client_as, make_contact):
    contact = make_contact(whatsapp=True, window=True)
    upload = SimpleUploadedFile("anim.gif", b"GIF89a", content_type="image/gif")

    response = client_as("Operator").post(
        "/api/messages/",
        {"contactId": str(contact.pk), "channel": "whatsapp", "media": upload},
        format="multipart",
    )

    assert response.status_code == 422 and response.json()["code"] == "CONTENT_INVALID"


def test_multipart_template_parameters_are_read_as_json(client_as, make_contact, make_template):
    contact = make_contact(whatsapp=True, window=True)
    make_template()

    response = client_as("Operator").post(
        "/api/messages/",
        {
            "contactId": str(contact.pk),
            "channel": "whatsapp",
            "templateName": "order_update",
            "templateLanguage": "en_US",
            "templateParameters": json.dumps(["Asha", "7"]),
        },
        format="multipart",
    )

    assert response.status_code == 202, response.content


def test_an_email_with_subject_and_html_is_accepted(client_as, make_contact):
    contact = make_contact(email_opt_in=True)

    response = client_as("Operator").post(
        "/api/messages/",
        {"contactId": str(contact.pk), "channel": "email", "subject": "Hi", "html": "<p>Hello<script>x</script></p>"},
        format="json",
    )

    assert response.status_code == 202
    assert response.json()["html"] == "<p>Hello</p>"
    assert response.json()["senderName"] == '"WECARE.DIGITAL" <one@wecare.digital>'


@pytest.mark.parametrize(("role", "status"), [("Viewer", 403), (None, 401)])
def test_viewers_and_strangers_may_not_send(client_as, make_contact, role, status):
    contact = make_contact(sms=True)

    response = client_as(role).post(
        "/api/messages/", {"contactId": str(contact.pk), "channel": "sms", "text": "Hi"}, format="json"
    )

    assert response.status_code == status
    assert Message.objects.count() == 0


def _message(contact, **fields) -> Message:
    return Message.objects.create(contact=contact, channel=fields.pop("channel", "sms"), content="x", **fields)


def test_a_viewer_lists_messages_newest_first_with_filters_and_without_expired_ones(client_as, make_contact):
    asha, ravi = make_contact(sms=True), make_contact(sms=True)
    now = timezone.now()
    old = _message(asha, created_at=now - timedelta(days=3))
    new = _message(asha, channel="whatsapp", status="sent", created_at=now - timedelta(hours=1))
    _message(ravi, direction="inbound", status="received")
    _message(asha, expires_at=now - timedelta(seconds=1))  # expired, not purged yet
    viewer = client_as("Viewer")

    everything = viewer.get("/api/messages/").json()
    for_asha = viewer.get("/api/messages/", {"contactId": str(asha.pk)}).json()
    whatsapp = viewer.get("/api/messages/", {"channel": "whatsapp", "status": "sent"}).json()
    inbound = viewer.get("/api/messages/", {"direction": "inbound"}).json()
    recent = viewer.get("/api/messages/", {"createdAfter": (now - timedelta(days=1)).isoformat()}).json()
    older = viewer.get("/api/messages/", {"createdBefore": (now - timedelta(days=1)).date().isoformat()}).json()

    assert everything["count"] == 3
    assert [m["messageId"] for m in for_asha["results"]] == [str(new.pk), str(old.pk)]
    assert [m["messageId"] for m in whatsapp["results"]] == [str(new.pk)]
    assert [m["direction"] for m in inbound["results"]] == ["inbound"]
    assert str(old.pk) not in [m["messageId"] for m in recent["results"]]
    assert [m["messageId"] for m in older["results"]] == [str(old.pk)]


def test_one_message_in_camel_case_and_an_expired_one_is_404(client_as, make_contact):
    contact = make_contact(sms=True)
    message = _message(contact, status="failed", error_code="ValidationException", error_details={"code": "x"})
    expired = _message(contact, expires_at=timezone.now() - timedelta(seconds=1))
    viewer = client_as("Viewer")

    body = viewer.get(f"/api/messages/{message.pk}/").json()

    for name in (
        "messageId",
        "contactId",
        "channel",
        "direction",
        "messageType",
        "content",
        "status",
        "errorDetails",
        "whatsappMessageId",
        "dryRun",
        "createdAt",
        "expiresAt",
    ):
        assert name in body
    assert body["errorCode"] == "ValidationException"
    assert viewer.get(f"/api/messages/{expired.pk}/").status_code == 404


def test_a_dry_run_message_says_so_in_its_status_label(client_as, make_contact):
    contact = make_contact(sms=True)
    message = _message(contact, status="sent", dry_run=True)

    body = client_as("Viewer").get(f"/api/messages/{message.pk}/").json()

    assert body["dryRun"] is True and "dry run" in body["statusLabel"]


def test_strangers_may_not_read(client_as):
    assert client_as(None).get("/api/messages/").status_code == 401
