"""Voice calls are kept 90 days, through the retention purge (archived first), longer than their
message's 30 days: purging the message leaves the call, without its message link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact
from messaging.models import Message, VoiceCall
from wecare import maintenance

pytestmark = pytest.mark.django_db


def _call(contact, **fields) -> VoiceCall:
    return VoiceCall.objects.create(
        contact=contact, origination="+12065550100", destination=contact.phone, body="Hello", voice="JOANNA", **fields
    )


def test_a_call_lives_90_days_and_outlives_its_message(reset_aws):
    contact = Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True)
    message = Message.objects.create(
        contact=contact, channel="voice", content="Hello", expires_at=timezone.now() - timedelta(minutes=1)
    )
    kept = _call(contact, message=message)
    expired = _call(contact, expires_at=timezone.now() - timedelta(minutes=1))
    assert (kept.expires_at - kept.created_at).days == 90

    result = maintenance.purge_expired()

    assert (result.messages, result.voice_calls) == (1, 1)
    assert result.archived["messaging.voicecall"] == 1
    assert not VoiceCall.objects.filter(pk=expired.pk).exists()
    kept.refresh_from_db()
    assert kept.message_id is None and kept.body == "Hello"
