"""The unsubscribe page in a real browser: a reader follows the link from an email, with no account,
confirms once, and the email opt-in is withdrawn (source unsubscribe); the page works on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from contacts.models import ConsentEvent
from messaging.feedback.unsubscribe import unsubscribe_url
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _path(contact) -> str:
    return re.sub(r"^https?://[^/]+", "", unsubscribe_url(contact))


@pytest.mark.parametrize("width", [WIDTHS["desktop"], WIDTHS["mobile"]])
def test_a_reader_unsubscribes_from_the_email_link_with_one_confirmation(browser_page, make_contact, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    contact = make_contact(email="diego@example.org", opt_ins={"email": True, "sms": True})

    page.goto(_path(contact))

    expect(page.locator("main h2")).to_have_text("Unsubscribe from our emails?")
    expect(page.locator("main")).to_contain_text("d***@example.org")
    assert "diego@example.org" not in page.content()
    assert no_horizontal_overflow(page)
    assert_house_style(page)
    contact.refresh_from_db()
    assert contact.opt_in_email is True  # opening the link alone changes nothing
    screenshot(page, "unsubscribe-confirm")

    page.click("[data-testid=unsubscribe-confirm]")

    expect(page.locator("[data-testid=unsubscribe-done]")).to_contain_text("no more emails to d***@example.org")
    contact.refresh_from_db()
    assert contact.opt_in_email is False and contact.opt_in_sms is True
    assert ConsentEvent.objects.get(contact=contact, channel="email", new_value=False).source == "unsubscribe"
    screenshot(page, "unsubscribe-done")
