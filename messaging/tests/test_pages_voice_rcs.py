"""Voice calls and RCS on the DM page and the contact page: offered where the contact has consent and a
number, sent through the gate, the calls listed with their statuses."""

from __future__ import annotations

import pytest

from contacts.models import Contact
from messaging.models import Message, VoiceCall, VoiceCallStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rcs_agent(settings):
    settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"


def test_the_composer_offers_voice_and_rcs_only_with_consent_and_a_number(operator_client):
    both = Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)
    neither = Contact.objects.create(name="Ravi", phone="+919876543211", opt_in_sms=True)
    no_phone = Contact.objects.create(name="Mia", email="mia@example.org", opt_in_voice=True)

    page = operator_client.get(f"/dm/{both.pk}/?channel=voice").content.decode()
    assert 'data-testid="voice-form"' in page and '<option value="JOANNA" selected>' in page
    assert 'href="?channel=rcs"' in page
    assert 'data-testid="rcs-form"' in operator_client.get(f"/dm/{both.pk}/?channel=rcs").content.decode()
    page = operator_client.get(f"/dm/{neither.pk}/?channel=voice").content.decode()
    assert 'data-testid="channel-unusable"' in page and 'data-testid="voice-form"' not in page
    assert 'Voice <span class="small">(not opted in)</span>' in page
    page = operator_client.get(f"/dm/{no_phone.pk}/?channel=voice").content.decode()
    assert 'Voice <span class="small">(no address)</span>' in page


def test_a_call_and_an_rcs_message_sent_from_the_dm_page_go_through_the_gate(operator_client):
    contact = Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)

    call = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "voice", "text": "Your table is ready.", "voice_id": "AMY"}
    )
    rcs = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "rcs", "text": "Shipped!", "replies": "Thanks\n\nWhere is it?\n"}
    )
    refused = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "voice", "text": "<speak>oops", "text_type": "SSML"}
    )

    assert call.status_code == 302 and rcs.status_code == 302
    voice_message = Message.objects.get(channel="voice")
    assert (voice_message.content, voice_message.options) == (
        "Your table is ready.",
        {"voiceId": "AMY", "textType": "TEXT"},
    )
    rcs_message = Message.objects.get(channel="rcs")
    assert rcs_message.options == {
        "suggestions": [{"type": "reply", "text": "Thanks"}, {"type": "reply", "text": "Where is it?"}]
    }
    assert refused.status_code == 200
    assert "The message cannot be sent as written." in refused.content.decode()
    assert Message.objects.filter(channel="voice").count() == 1


def test_the_calls_are_listed_on_the_dm_page_and_the_contact_page_with_their_status(operator_client, viewer_client):
    contact = Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True)
    VoiceCall.objects.create(
        contact=contact, origination="+12065550100", destination=contact.phone, body="Your table is ready.",
        voice="AMY", status=VoiceCallStatus.COMPLETED, duration_seconds=14,
    )  # fmt: skip

    for client, path in [(operator_client, f"/dm/{contact.pk}/"), (viewer_client, f"/contacts/{contact.pk}/")]:
        page = client.get(path).content.decode()
        assert 'data-testid="calls"' in page
        assert 'data-status="completed">Completed</td>' in page and "14 s" in page and "Your table is ready." in page
