"""End to end in a real browser: a voice call and an RCS message sent from the DM page go LIVE to the
local fake of pinpoint-sms-voice-v2 (its JSON protocol over HTTP), and their statuses come back as the
service publishes them, signed SNS notifications POSTed to the verified /webhooks/sns/ endpoint; the
page shows them by itself."""

from __future__ import annotations

import json

import pytest
import requests
from playwright.sync_api import expect

from contacts.models import Contact
from localdev.fake_socialmessaging import FakeSocialMessaging, sms_voice_events
from messaging import inbound
from messaging.models import InboundEvent, Message, MessageStatus, VoiceCall, VoiceCallStatus
from messaging.tests.sns_signing import sns_notification
from wecare import aws
from wecare.celery import app
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fake(monkeypatch, settings):
    """LIVE sends to the fake on 127.0.0.1, delivered in the server's process (a worker is refused LIVE
    outside production; here the provider is the fake, never AWS)."""
    settings.SEND_MODE = "LIVE"
    settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"
    settings.VOICE_ORIGINATION_IDENTITY = "+12065550100"
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    with FakeSocialMessaging(latency=0.0) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", server.url)
        aws.reset_clients()
        yield server
    app.conf.task_always_eager = eager
    monkeypatch.undo()
    aws.reset_clients()


def _publish(live_server, identity, events: list[dict]) -> None:
    """SNS delivers each event to the endpoint (signed, over HTTP); the inbound worker's body processes it."""
    for event in events:
        body = identity.sign(sns_notification(json.dumps(event)), version="2")
        response = requests.post(
            f"{live_server.url}/webhooks/sns/",
            data=json.dumps(body),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": body["MessageId"],
                "x-amz-sns-topic-arn": body["TopicArn"],
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        stored = InboundEvent.objects.get(sns_message_id=body["MessageId"])
        inbound.inbound_event_process(event_id=stored.pk)


def test_a_voice_call_and_an_rcs_message_from_the_dm_page_and_their_statuses_through_sns(
    browser_page, login_as, live_server, sns_setup, fake
):
    page = browser_page
    login_as(page, "Operator")
    contact = Contact.objects.create(name="Asha Rao", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)

    # The call.
    page.goto(f"/dm/{contact.pk}/")
    page.click("#composer a[data-channel=voice]")
    page.wait_for_url("**/?channel=voice")
    page.fill("#voice-text", "Hello Asha, your table for two is ready.")
    page.select_option("#voice-id", "AMY")
    page.get_by_role("button", name="Call", exact=True).click()
    expect(page.locator(".bubble-outbound").last).to_contain_text(
        "Hello Asha, your table for two is ready.", timeout=15_000
    )
    expect(page.locator("[data-testid=call-status]").last).to_contain_text("Call: Initiated")
    call = fake.calls("SendVoiceMessage")[0]
    assert (call.params["VoiceId"], call.params["OriginationIdentity"]) == ("AMY", "+12065550100")

    _publish(live_server, sns_setup, sms_voice_events(call, duration=14))

    expect(page.locator("[data-testid=call-status]").last).to_contain_text("Call: Completed · 14 s", timeout=10_000)
    voice = Message.objects.get(channel="voice")
    expect(page.locator(f"[data-message='{voice.pk}'] .ticks")).to_have_attribute("data-status", "delivered")
    assert VoiceCall.objects.get(message=voice).status == VoiceCallStatus.COMPLETED

    # The RCS message, with two suggested replies.
    page.click("#composer a[data-channel=rcs]")
    page.wait_for_url("**/?channel=rcs")
    page.fill("#rcs-text", "Your order has shipped.")
    page.fill("#rcs-replies", "Thanks\nWhere is it?")
    page.get_by_role("button", name="Send RCS", exact=True).click()
    expect(page.locator(".bubble-outbound").last).to_contain_text("Your order has shipped.")
    expect(page.locator("[data-testid=rcs-suggestions]").last).to_contain_text("Where is it?")
    sent = fake.calls("SendRcsMessage")[0]
    assert "FallbackConfiguration" not in sent.params
    assert sent.params["OriginationIdentity"] == "rcs-agent-0123456789abcdef0123456789abcdef"

    _publish(live_server, sns_setup, sms_voice_events(sent))

    rcs = Message.objects.get(channel="rcs")
    expect(page.locator(f"[data-message='{rcs.pk}'] .ticks")).to_have_attribute("data-status", "read", timeout=10_000)
    assert Message.objects.get(pk=rcs.pk).status == MessageStatus.READ
    assert fake.calls("SendTextMessage") == []  # no SMS instead, ever

    # The contact page lists the call.
    page.goto(f"/contacts/{contact.pk}/")
    expect(page.locator("[data-testid=calls] td[data-status=completed]")).to_have_text("Completed")
    screenshot(page, "contact-calls")


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_voice_and_rcs_composers_and_the_calls_list_fit_the_screen(browser_page, login_as, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    login_as(page, "Operator")
    contact = Contact.objects.create(name="Asha Rao", phone="+919876543210", opt_in_voice=True, opt_in_rcs=True)
    VoiceCall.objects.create(
        contact=contact, origination="+12065550100", destination=contact.phone, voice="RAVEENA",
        body="Hello Asha, this is a reminder of your appointment tomorrow at ten in the morning.",
        status=VoiceCallStatus.NO_ANSWER,
    )  # fmt: skip

    for path, name in [(f"/dm/{contact.pk}/?channel=voice", "dm-voice"), (f"/dm/{contact.pk}/?channel=rcs", "dm-rcs"),
                       (f"/contacts/{contact.pk}/", "contact-calls")]:  # fmt: skip
        page.goto(path)
        expect(page.locator("[data-testid=calls]")).to_contain_text("No answer")
        screenshot(page, name)
        assert no_horizontal_overflow(page), f"{path} overflows at {width}px"
        assert_house_style(page)
