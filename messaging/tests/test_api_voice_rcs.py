"""The API sends voice calls and RCS messages with their options through the gate, and lists calls
(GET /api/voice-calls/, Viewer and up); the admin shows calls read-only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import user_create
from contacts.models import Contact
from messaging.models import Message, VoiceCall, VoiceCallStatus

pytestmark = pytest.mark.django_db


def _client(role: str | None) -> APIClient:
    client = APIClient()
    if role:
        client.force_authenticate(user_create(email=f"{role.lower()}@example.com", role=role))
    return client


@pytest.fixture
def contact(settings):
    settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"
    return Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)


def test_an_operator_sends_a_call_in_ssml_and_an_rcs_message_with_suggestions(contact):
    api = _client("Operator")
    ssml = "<speak>Hello <emphasis>Asha</emphasis></speak>"

    options = {"textType": "SSML", "voiceId": "Raveena"}
    call = api.post("/api/messages/", {"contactId": str(contact.pk), "channel": "voice", "text": ssml,
                                       "options": options}, format="json")  # fmt: skip
    rcs = api.post("/api/messages/", {"contactId": str(contact.pk), "channel": "rcs", "text": "Shipped",
                                      "options": {"suggestions": [{"type": "url", "text": "Track",
                                                                   "url": "https://wecare.digital/t"}]}},
                   format="json")  # fmt: skip
    bad = api.post("/api/messages/", {"contactId": str(contact.pk), "channel": "rcs", "text": "Hi",
                                      "options": {"suggestions": [{"type": "url", "text": "Track",
                                                                   "url": "javascript:alert(1)"}]}},
                   format="json")  # fmt: skip
    not_object = api.post("/api/messages/", {"contactId": str(contact.pk), "channel": "voice", "text": "Hi",
                                             "options": ["SSML"]}, format="json")  # fmt: skip

    assert call.status_code == 202, call.content
    assert call.json()["options"] == {"voiceId": "RAVEENA", "textType": "SSML"}
    assert rcs.status_code == 202 and rcs.json()["options"]["suggestions"][0]["url"] == "https://wecare.digital/t"
    assert (bad.status_code, bad.json()["code"]) == (422, "CONTENT_INVALID")
    assert not_object.status_code == 400
    assert Message.objects.count() == 2


def test_calls_are_listed_for_viewers_and_filtered_by_contact_and_status(contact):
    other = Contact.objects.create(name="Ravi", phone="+919876543211", opt_in_voice=True)
    for who, status in [
        (contact, VoiceCallStatus.COMPLETED),
        (contact, VoiceCallStatus.BUSY),
        (other, VoiceCallStatus.COMPLETED),
    ]:
        VoiceCall.objects.create(contact=who, origination="+12065550100", destination=who.phone, body="Hi",
                                 voice="JOANNA", status=status)  # fmt: skip

    viewer = _client("Viewer")
    mine = viewer.get(f"/api/voice-calls/?contactId={contact.pk}").json()["results"]
    completed = viewer.get("/api/voice-calls/?status=completed").json()["results"]

    assert sorted(c["status"] for c in mine) == ["busy", "completed"]
    assert {c["contactId"] for c in completed} == {str(contact.pk), str(other.pk)}
    assert _client(None).get("/api/voice-calls/").status_code in (401, 403)


def test_the_admin_lists_calls_read_only(admin_client_role, contact):
    call = VoiceCall.objects.create(contact=contact, origination="+12065550100", destination=contact.phone,
                                    body="Hi", voice="JOANNA")  # fmt: skip

    listing = admin_client_role.get("/admin/messaging/voicecall/")
    change = admin_client_role.post(f"/admin/messaging/voicecall/{call.pk}/change/", {"status": "completed"})

    assert listing.status_code == 200 and contact.phone in listing.content.decode()
    assert change.status_code == 403
    call.refresh_from_db()
    assert call.status == VoiceCallStatus.INITIATED
