"""Contacts in a real browser: create, search, edit — with htmx navigation and the house style."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from contacts.models import ConsentEvent, Contact
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_creates_finds_and_edits_a_contact_without_a_full_reload(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    page.goto("/")
    page.evaluate("window.__marker = 'same document'")

    page.click("#nav a[data-nav=contacts]")
    page.wait_for_url("**/contacts/")
    page.click("text=New contact")
    page.wait_for_url("**/contacts/new/")
    page.fill("#id_name", "Asha Rao")
    page.fill("#id_phone", "98765 43210")
    page.check("#id_opt_in_whatsapp")
    page.click("button:has-text('Create contact')")

    expect(page.locator("main h1")).to_have_text("Asha Rao")
    contact = Contact.objects.get()
    assert page.url.endswith(f"/contacts/{contact.pk}/")
    assert contact.phone == "+919876543210" and contact.opt_in_whatsapp and not contact.opt_in_sms
    expect(page.locator("[data-testid=consent-history]")).to_contain_text("WhatsApp")

    page.click("#nav a[data-nav=contacts]")
    page.wait_for_url("**/contacts/")
    page.fill("#contact-search", "asha")
    page.wait_for_url("**/contacts/?search=asha**")  # the filtered list is a link
    expect(page.locator("[data-testid=contact-count]")).to_have_text("1 contact")
    page.fill("#contact-search", "nobody-like-this")
    expect(page.locator("[data-testid=contact-count]")).to_have_text("0 contacts")
    page.fill("#contact-search", "98765")
    expect(page.locator("[data-testid=contact-count]")).to_have_text("1 contact")

    page.click("text=Asha Rao")
    page.wait_for_url(f"**/contacts/{contact.pk}/")
    page.click("main a:has-text('Edit')")
    page.wait_for_url("**/edit/")
    page.fill("#id_name", "Asha R. Rao")
    page.check("#id_opt_in_sms")
    page.click("button:has-text('Save')")

    expect(page.locator("main h1")).to_have_text("Asha R. Rao")
    contact.refresh_from_db()
    assert contact.name == "Asha R. Rao" and contact.opt_in_sms
    assert ConsentEvent.objects.filter(contact=contact, source="ui").count() == 2
    assert page.evaluate("window.__marker") == "same document"  # no full page load on the way


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_contact_pages_fit_the_screen(browser_page, login_as, width, make_contact):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    login_as(page, "Admin")
    contact = make_contact(
        name="Asha Rao with a rather long name",
        phone="+919876543210",
        email="asha.rao.long.address@example.com",
        opt_ins={"whatsapp": True, "email": True},
    )
    for n in range(3):
        make_contact(name=f"Person {n}", email=f"person{n}@example.com")

    for path, name in [
        ("/contacts/", "contacts-list"),
        (f"/contacts/{contact.pk}/", "contact-detail"),
        (f"/contacts/{contact.pk}/edit/", "contact-edit"),
        ("/contacts/new/", "contact-new"),
        ("/contacts/import/", "contacts-import"),
    ]:
        page.goto(path)
        screenshot(page, name)
        assert no_horizontal_overflow(page), f"{path} overflows at {width}px"
        assert_house_style(page)
