"""The local fake of EUM Social / EUM SMS (localdev/fake_socialmessaging.py) answers real boto3 calls the
way the services do: the benchmark and end-to-end runs depend on that."""

from __future__ import annotations

import pytest

from localdev.fake_socialmessaging import FakeSocialMessaging
from messaging.services import DeliveryDeferred, media_upload, message_deliver, message_send, send_request_build
from messaging.whatsapp_templates import whatsapp_template_sync
from wecare import aws

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(monkeypatch):
    with FakeSocialMessaging(latency=0.0) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", server.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", server.url)
        aws.reset_clients()
        yield server
    monkeypatch.undo()
    aws.reset_clients()


def test_text_media_and_sms_go_through_the_fake_over_http(fake, live, make_contact, settings):
    contact = make_contact(whatsapp=True, sms=True, window=True)
    media = media_upload(data=b"\x89PNG....", content_type="image/png", filename="a.png")
    text = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hello"), enqueue=False)
    image = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", media=media), enqueue=False)
    sms = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Code 1234"), enqueue=False)

    results = [message_deliver(m.pk) for m in (text, image, sms)]

    assert [r.status for r in results] == ["sent", "sent", "sent"]
    assert all(r.provider_message_id for r in results)
    assert [c.operation for c in fake.calls()] == [
        "SendWhatsAppMessage",
        "PostWhatsAppMessageMedia",
        "SendWhatsAppMessage",
        "SendTextMessage",
    ]
    first, second = fake.sends
    assert first.message["text"]["body"] == "Hello"
    assert first.params["originationPhoneNumberId"] == settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    assert first.params["metaApiVersion"] == "v20.0"
    assert second.message["image"]["id"] == results[1].media.get().whatsapp_media_id
    assert fake.calls("SendTextMessage")[0].params["OriginationIdentity"] == settings.SMS_POOL_ID


def test_an_injected_throttle_is_a_transient_error_then_the_send_goes(fake, live, make_contact):
    contact = make_contact(whatsapp=True, window=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", text="Hello"), enqueue=False)
    fake.fail_next("ThrottledRequestException", 429)

    with pytest.raises(DeliveryDeferred):
        message_deliver(message.pk)
    sent = message_deliver(message.pk)

    assert sent.status == "sent" and sent.attempts == 2


def test_templates_sync_from_the_fake(fake):
    fake.add_template(
        "waba-0123456789abcdef0123456789abcdef",
        {
            "name": "hello",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}"}],
        },
    )

    result = whatsapp_template_sync()

    assert (result.wabas, result.created, result.errors) == (1, 1, [])
