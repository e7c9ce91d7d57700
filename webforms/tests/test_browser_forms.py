"""Forms in a real browser: a visitor fills the public form at 320 px and 1280 px, follows the double
opt-in link from the confirmation email (the DRY_RUN message record), and staff see the consent history."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from webforms.tests.conftest import WORDING, confirmation_link
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", WIDTHS.values())
def test_a_visitor_fills_the_form_confirms_by_email_and_staff_see_the_consent_history(
    browser_page, login_as, make_form, width
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    form = make_form(slug=f"stay-in-touch-{width}")

    page.goto(f"/f/{form.slug}/")
    expect(page.locator("h1")).to_have_text("Stay in touch")
    expect(page.locator("[data-testid=consent-whatsapp]")).to_have_text(WORDING["whatsapp"])
    box = page.locator(".hp-field").bounding_box()
    assert box["x"] + box["width"] <= 0  # the honeypot is off screen: it is not for people
    assert no_horizontal_overflow(page), f"the form overflows at {width}px"
    assert_house_style(page)
    screenshot(page, "form-public")

    # A mistake first: the errors show, and what was typed stays.
    page.fill("input[name=name]", "Asha Rao")
    page.fill("input[name=phone]", "98765 43210")
    page.fill("input[name=email]", "asha-at-example.org")
    page.check("input[name=consent_whatsapp]")
    page.check("input[name=consent_email]")
    page.click("button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("Enter a valid email address")
    expect(page.locator("input[name=name]")).to_have_value("Asha Rao")
    expect(page.locator("input[name=consent_whatsapp]")).to_be_checked()
    assert no_horizontal_overflow(page)

    page.fill("input[name=email]", "asha@example.org")
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=confirm-email-sent]")).to_be_visible()
    screenshot(page, "form-thanks")

    contact = Contact.objects.get(phone="+919876543210")
    assert contact.opt_in_whatsapp is True and contact.opt_in_email is False

    page.goto(confirmation_link(contact))
    page.click("[data-testid=confirm-button]")
    expect(page.locator("[data-testid=confirmed]")).to_contain_text("asha@example.org")
    assert no_horizontal_overflow(page)
    contact.refresh_from_db()
    assert contact.opt_in_email is True

    login_as(page, "Operator")
    page.goto(f"/contacts/{contact.pk}/")
    history = page.locator("[data-testid=consent-history]")
    expect(history).to_contain_text("Form")
    expect(history.locator("[data-testid=consent-proof]")).to_have_count(2)
    expect(history).to_contain_text(WORDING["whatsapp"])
    expect(history).to_contain_text(f"form /f/{form.slug}/ v1, email confirmed")
    assert no_horizontal_overflow(page)
    screenshot(page, "form-consent-history")
