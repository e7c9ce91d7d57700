"""Staff build a form in a real browser, from the sidebar, at 320 px and 1280 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from webforms.models import Form
from wecare.tests.pages_fixtures import WIDTHS, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", WIDTHS.values())
def test_an_operator_builds_a_form_from_the_sidebar_and_gets_its_embed_snippet(browser_page, login_as, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    login_as(page, "Operator")
    page.goto("/")

    if width < 720:
        page.click(".menu-button")
    page.click("#nav a[data-nav=forms]")
    page.wait_for_url("**/forms/")
    page.click("text=New form")
    page.fill("input[name=name]", "Diwali offers")
    page.fill("input[name=slug]", f"diwali-{width}")
    page.fill("input[name=title]", "Diwali offers")
    page.select_option("select[name=ask_phone]", "required")
    page.fill("textarea[name=consent_whatsapp]", "Yes, send me Diwali offers on WhatsApp.")
    assert no_horizontal_overflow(page), f"the builder overflows at {width}px"
    screenshot(page, "form-builder")
    page.click("button:has-text('Create form')")

    page.wait_for_url(re.compile(r"/forms/[0-9a-f-]{36}/$"))
    form = Form.objects.get(slug=f"diwali-{width}")
    assert page.url.endswith(f"/forms/{form.pk}/")
    expect(page.locator("[data-testid=current-version]")).to_have_text("1")
    expect(page.locator("[data-testid=embed-snippet]")).to_contain_text(f"/f/diwali-{width}/")
    assert no_horizontal_overflow(page), f"the form page overflows at {width}px"
    screenshot(page, "form-detail")
