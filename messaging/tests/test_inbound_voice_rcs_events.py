"""Voice call and RCS events of EUM SMS reach the verified SNS endpoint in the service's event format
and move the call and the message forward only. The sends go to the local fake of pinpoint-sms-voice-v2
over HTTP (the real protocol), which also gives the events it would publish."""

from __future__ import annotations

import json

import pytest

from contacts.models import Contact
from localdev.fake_socialmessaging import FakeSocialMessaging, sms_voice_events
from messaging import inbound
from messaging.models import InboundEvent, Message, MessageStatus, VoiceCall, VoiceCallStatus
from messaging.services import message_deliver, message_send, send_request_build
from messaging.tests.sns_signing import headers_for, sns_notification
from wecare import aws

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]


@pytest.fixture
def fake(monkeypatch, settings):
    settings.SEND_MODE = "LIVE"  # the provider is the fake on 127.0.0.1, never AWS
    settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"
    settings.RATE_LIMIT_VOICE = settings.RATE_LIMIT_RCS = 1000.0
    with FakeSocialMessaging(latency=0.0) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", server.url)
        aws.reset_clients()
        yield server
    monkeypatch.undo()
    aws.reset_clients()


@pytest.fixture
def contact():
    return Contact.objects.create(name="Asha", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)


def _send(contact, channel: str, text: str, options=None) -> Message:
    request = send_request_build(contact_id=contact.pk, channel=channel, text=text, options=options)
    return message_deliver(message_send(request, enqueue=False).pk)


def _post_events(client, identity, events: list[dict]) -> list:
    """Each event as SNS delivers it (a signed Notification) through the real endpoint, then processed."""
    summaries = []
    for event in events:
        body = identity.sign(sns_notification(json.dumps(event)), version="2")
        response = client.post("/webhooks/sns/", data=json.dumps(body), content_type="text/plain", **headers_for(body))
        assert response.status_code == 200, response.content
        stored = InboundEvent.objects.get(sns_message_id=body["MessageId"])
        summaries.append(inbound.inbound_event_process(event_id=stored.pk))
    return summaries


def test_a_calls_events_move_the_call_to_completed_and_the_message_to_delivered(client, sns_setup, fake, contact):
    message = _send(contact, "voice", "Your table is ready.")
    call = fake.calls("SendVoiceMessage")[0]
    assert (call.params["MessageBody"], message.provider_message_id) == ("Your table is ready.", call.message_id)

    summaries = _post_events(client, sns_setup, sms_voice_events(call, duration=14))

    # The send recorded the call as initiated already: the INITIATED event is not newer.
    assert [s.statuses_applied for s in summaries] == [[], [call.message_id], [call.message_id], [call.message_id]]
    record = VoiceCall.objects.get(message=message)
    assert (record.status, record.duration_seconds) == (VoiceCallStatus.COMPLETED, 14)
    assert record.answered_at is not None and record.ended_at is not None
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED and message.delivered_at is not None


def test_a_busy_line_fails_the_message_and_a_late_ringing_changes_nothing(client, sns_setup, fake, contact):
    message = _send(contact, "voice", "Hello")
    call = fake.calls("SendVoiceMessage")[0]
    initiated, ringing, busy = sms_voice_events(call, outcome="BUSY")

    _post_events(client, sns_setup, [initiated, busy])
    late = _post_events(client, sns_setup, [ringing])

    assert late[0].statuses_ignored == [call.message_id]
    assert VoiceCall.objects.get(message=message).status == VoiceCallStatus.BUSY
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "VOICE_BUSY")


def test_rcs_delivered_and_read_events_reach_the_message_in_any_order(client, sns_setup, fake, contact):
    message = _send(contact, "rcs", "Your order shipped.", {"suggestions": [{"type": "reply", "text": "Thanks"}]})
    call = fake.calls("SendRcsMessage")[0]
    assert "FallbackConfiguration" not in call.params
    assert call.params["RcsMessageContent"]["Suggestions"] == [{"Reply": {"Text": "Thanks", "PostbackData": "Thanks"}}]
    delivered, read = sms_voice_events(call)
    assert {"rcsBusinessId", "agentIsoCountryCode"} <= set(read)

    _post_events(client, sns_setup, [read, delivered])

    message.refresh_from_db()
    assert message.status == MessageStatus.READ
    assert message.read_at is not None and message.delivered_at is not None


def test_the_batch_path_hands_voice_and_rcs_events_to_the_per_event_path(client, sns_setup, fake, contact):
    message = _send(contact, "rcs", "Hi")
    body = sns_setup.sign(sns_notification(json.dumps(sms_voice_events(fake.calls()[0])[0])), version="2")
    client.post("/webhooks/sns/", data=json.dumps(body), content_type="text/plain", **headers_for(body))
    stored = InboundEvent.objects.get(sns_message_id=body["MessageId"])

    summary = inbound.inbound_events_process(event_ids=[str(stored.pk)])

    assert summary.one_by_one == [str(stored.pk)] and summary.failed == []
    inbound.inbound_event_process(event_id=stored.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_an_event_for_no_message_of_ours_is_kept_and_changes_nothing(client, sns_setup, contact):
    event = {"eventType": "VOICE_COMPLETED", "messageId": "not-ours", "messageStatus": "COMPLETED"}

    summary = _post_events(client, sns_setup, [event])[0]

    assert summary.statuses_ignored == ["not-ours"]
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED
