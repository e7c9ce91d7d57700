"""The segment builder in a real browser: conditions, the live preview, saving, and a Viewer's read-only view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audiences.models import Segment
from audiences.services import segment_create
from contacts.attributes import contacts_tag
from contacts.models import Contact
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audience(db):
    """Five VIPs (three opted in to SMS, one of those without a phone) and two others."""
    vip = [Contact.objects.create(name=f"Vip {n}", phone=f"+91980000000{n}", opt_in_sms=n < 2) for n in range(4)] + [
        Contact.objects.create(name="Vip mail", email="vip@example.com", opt_in_sms=True)
    ]
    Contact.objects.create(name="Other 1", phone="+919811111111", opt_in_sms=True)
    Contact.objects.create(name="Other 2", phone="+919811111112", opt_in_sms=True)
    contacts_tag(contact_ids=[c.pk for c in vip], add=["vip"], actor=None, source="api")
    return vip


def test_an_operator_builds_previews_and_saves_a_segment(browser_page, login_as, audience):
    page = browser_page
    login_as(page, "Operator")
    page.goto("/")
    page.click("#nav a[data-nav=audiences]")
    page.wait_for_url("**/audiences/")
    page.click("text=New segment")
    page.wait_for_url("**/audiences/new/")

    # Every contact first, then the preview follows each condition as it is typed.
    expect(page.locator("[data-testid=preview-count]")).to_have_text("7")
    page.fill("#tags-any", "vip")
    expect(page.locator("[data-testid=preview-count]")).to_have_text("5")
    page.select_option("#preview-channel", "sms")
    expect(page.locator("[data-testid=preview-would-send]")).to_have_text("2")
    expect(page.locator("[data-testid=preview-skips] [data-code=OPT_IN_REQUIRED] td").first).to_have_text("2")
    expect(page.locator("[data-testid=preview-skips] [data-code=ADDRESS_MISSING] td").first).to_have_text("1")
    page.select_option("#consent-sms", "yes")
    expect(page.locator("[data-testid=preview-count]")).to_have_text("3")
    page.fill("#last-inbound-after", "not a date")
    expect(page.locator("[data-testid=preview-errors]")).to_contain_text("lastInboundAfter")
    page.fill("#last-inbound-after", "")
    expect(page.locator("[data-testid=preview-count]")).to_have_text("3")
    assert_house_style(page)
    screenshot(page, "segment-builder")

    page.fill("#segment-name", "SMS VIPs")
    page.click("[data-testid=save-segment]")
    expect(page.locator(".flash")).to_contain_text("Segment 'SMS VIPs' saved.")
    segment = Segment.objects.get()
    assert segment.spec == {"tagsAny": ["vip"], "consent": {"sms": True}}
    page.wait_for_url(f"**/audiences/{segment.pk}/")
    expect(page.locator("#tags-any")).to_have_value("vip")
    expect(page.locator("[data-testid=send-to-segment]")).to_be_visible()

    page.set_viewport_size({"width": WIDTHS["mobile"], "height": 900})
    assert no_horizontal_overflow(page)
    screenshot(page, "segment-builder")


def test_a_viewer_reads_and_previews_a_segment_but_cannot_change_it(browser_page, login_as, audience):
    segment = segment_create(name="VIPs", spec={"tagsAny": ["vip"]}, actor=None)
    page = browser_page
    login_as(page, "Viewer")
    page.goto(f"/audiences/{segment.pk}/")

    expect(page.locator("[data-testid=read-only]")).to_be_visible()
    expect(page.locator("[data-testid=preview-count]")).to_have_text("5")
    expect(page.locator("#tags-any")).to_be_disabled()
    expect(page.locator("[data-testid=save-segment]")).to_have_count(0)
    expect(page.locator("[data-testid=delete-segment]")).to_have_count(0)
    page.select_option("#preview-channel", "sms")
    expect(page.locator("[data-testid=preview-would-send]")).to_have_text("2")
