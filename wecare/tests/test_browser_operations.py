"""The operations page in Chromium at 320 px and 1280 px: charts drawn, no overflow, live refresh."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contacts.models import Contact
from messaging.models import Message
from wecare.tests.pages_fixtures import WIDTHS, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _traffic() -> Contact:
    contact = Contact.objects.create(name="Ops", phone=f"+9198{uuid.uuid4().int % 10**8:08d}")
    now = timezone.now()
    for minutes in (3, 4, 30, 300):
        Message.objects.create(
            contact=contact, channel="whatsapp", status="sent", sent_at=now - timedelta(minutes=minutes)
        )
    Message.objects.create(
        contact=contact, channel="sms", status="failed", failed_at=now, error_code="ValidationException"
    )
    return contact


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_operations_page_draws_its_charts_and_fits_the_screen(browser_page, login_as, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    _traffic()
    login_as(page, "Admin")

    page.goto("/")
    page.click("#nav label.menu-button" if width < 720 else "#nav a[data-nav=operations]")
    if width < 720:
        page.click("#nav a[data-nav=operations]")
    page.wait_for_url("**/operations/")

    expect(page.locator("main h1")).to_have_text("Operations")
    for chart in ("sends", "failures", "tier", "limits"):
        svg = page.locator(f"[data-testid=chart-{chart}] svg.ops-chart")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box["width"] > 200 and box["height"] > 20, (chart, box)
        assert box["x"] + box["width"] <= width + 1, f"chart {chart} is wider than the screen"
    assert page.locator("[data-testid=chart-sends] polyline[data-series=whatsapp]").count() == 1
    assert page.locator("[data-testid=chart-tier] line.threshold").count() == 1
    expect(page.locator("[data-testid=ops-errors]")).to_contain_text("ValidationException")
    assert page.locator("[data-testid=ops-queues] button", has_text="Replay").count() == 3
    text = page.locator("main").inner_text()
    assert "{{" not in text and "{%" not in text and "{#" not in text
    assert no_horizontal_overflow(page), f"the operations page overflows at {width}px"
    screenshot(page, "operations")


def test_the_page_refreshes_its_live_part_without_a_reload(browser_page, login_as, monkeypatch):
    from wecare import operations_views

    monkeypatch.setattr(operations_views, "POLL_SECONDS", 1)
    page = browser_page
    contact = _traffic()
    login_as(page, "Admin")
    page.goto("/operations/")
    page.evaluate("window.__marker = 'no reload'")
    expect(page.locator("[data-testid=ops-errors]")).not_to_contain_text("TemplateRejected")

    Message.objects.create(
        contact=contact, channel="whatsapp", status="failed", failed_at=timezone.now(), error_code="TemplateRejected"
    )

    expect(page.locator("[data-testid=ops-errors]")).to_contain_text("TemplateRejected", timeout=10_000)
    assert page.evaluate("window.__marker") == "no reload"
