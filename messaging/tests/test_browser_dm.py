"""DM in a real browser: free text inside the window, a template outside it, live updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contacts.models import Contact
from messaging.models import Direction, Message, MessageStatus, TemplateStatus, WhatsAppTemplate
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_contact(*, window: bool, name: str = "Asha Rao", phone: str = "+919876543210") -> Contact:
    return Contact.objects.create(
        name=name,
        phone=phone,
        opt_in_whatsapp=True,
        opt_in_sms=True,
        last_inbound_message_at=timezone.now() - timedelta(hours=1 if window else 30),
    )


def make_template() -> WhatsAppTemplate:
    body = "Hi {{1}}, your order #{{2}} has shipped."
    return WhatsAppTemplate.objects.create(
        name="order_update", language="en_US", category="UTILITY", status=TemplateStatus.APPROVED, body=body,
        components=[{"type": "BODY", "text": body}],
    )  # fmt: skip


def test_inside_the_window_free_text_is_sent_and_new_messages_appear_without_a_reload(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    contact = make_contact(window=True)
    Message.objects.create(contact=contact, channel="whatsapp", direction=Direction.INBOUND, content="Is it shipped?",
                           status=MessageStatus.RECEIVED)  # fmt: skip
    page.goto("/")
    page.evaluate("window.__marker = 'no reload'")

    page.click("#nav a[data-nav=dm]")
    page.wait_for_url("**/dm/")
    expect(page.locator(".conversation.unread")).to_contain_text("1 unread")
    page.click("text=Asha Rao")
    page.wait_for_url(f"**/dm/{contact.pk}/")
    expect(page.locator("[data-testid=window]")).to_contain_text("free-form until")
    page.fill("#wa-text", "Yes, it left this morning.")
    page.click("button:has-text('Send WhatsApp')")

    expect(page.locator(".bubble-outbound").last).to_contain_text("Yes, it left this morning.")
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert (sent.content, sent.channel, sent.message_type) == ("Yes, it left this morning.", "whatsapp", "text")
    expect(page.locator("#wa-text")).to_have_value("")

    # A reply arrives, and the sent message is delivered: both show up by themselves.
    Message.objects.create(contact=contact, channel="whatsapp", direction=Direction.INBOUND, content="Thanks!",
                           status=MessageStatus.RECEIVED)  # fmt: skip
    Message.objects.filter(pk=sent.pk).update(status=MessageStatus.DELIVERED)
    expect(page.locator(".bubble-inbound").last).to_contain_text("Thanks!", timeout=10_000)
    expect(page.locator(f"[data-message='{sent.pk}'] .ticks")).to_have_attribute("data-status", "delivered")
    assert page.evaluate("window.__marker") == "no reload"


def test_outside_the_window_the_operator_is_asked_for_a_template(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    contact = make_contact(window=False)
    template = make_template()

    page.goto(f"/dm/{contact.pk}/")

    expect(page.locator("[data-testid=template-required]")).to_be_visible()
    assert page.locator("[data-testid=free-text-form]").count() == 0
    page.select_option("#template-picker", str(template.pk))
    expect(page.locator("[data-testid=template-param]")).to_have_count(2)
    page.locator("[data-testid=template-param]").nth(0).fill("Asha")
    page.click("button:has-text('Send template')")
    expect(page.locator("[data-testid=refusal]")).to_contain_text("This template cannot be sent.")
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()

    page.locator("[data-testid=template-param]").nth(1).fill("1042")
    page.click("button:has-text('Send template')")
    expect(page.locator(".bubble-outbound").last).to_contain_text("Hi Asha, your order #1042 has shipped.")
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert (sent.message_type, sent.template_parameters) == ("template", ["Asha", "1042"])


def test_the_sms_composer_counts_segments_as_the_operator_types(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    contact = make_contact(window=True)

    page.goto(f"/dm/{contact.pk}/?channel=sms")
    page.fill("#sms-text", "a" * 161)

    expect(page.locator("[data-testid=sms-segments]")).to_contain_text("161 characters · 2 segments (GSM-7)")


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_dm_pages_fit_the_screen(browser_page, login_as, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    login_as(page, "Operator")
    contact = make_contact(window=True)
    make_template()
    for n, text in enumerate(["Hello, is my order on its way? " * 3, "Thank you!"]):
        when = timezone.now() - timedelta(minutes=30 - n)
        Message.objects.create(contact=contact, channel="whatsapp", direction=Direction.INBOUND, content=text,
                               status=MessageStatus.RECEIVED, created_at=when)  # fmt: skip
    Message.objects.create(contact=contact, channel="whatsapp", direction=Direction.OUTBOUND, content="It ships today.",
                           status=MessageStatus.READ)  # fmt: skip
    Message.objects.create(contact=contact, channel="sms", direction=Direction.OUTBOUND, content="Your code is 1234",
                           status=MessageStatus.FAILED, error_code="DESTINATION_UNREACHABLE",
                           error_details={"message": "The carrier could not deliver it"})  # fmt: skip

    for path, name in [("/dm/", "dm-inbox"), (f"/dm/{contact.pk}/", "dm-conversation"),
                       (f"/dm/{contact.pk}/?channel=sms", "dm-sms"),
                       (f"/dm/{contact.pk}/?channel=email", "dm-email")]:  # fmt: skip
        page.goto(path)
        screenshot(page, name)
        assert no_horizontal_overflow(page), f"{path} overflows at {width}px"
        assert_house_style(page)
