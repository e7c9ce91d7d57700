"""The Agent page and the suggestion in the DM conversation, in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from automation import services
from automation.models import AISuggestion, KnowledgeEntry, SuggestionStatus
from automation.tests.conftest import FAQ
from contacts.models import Contact
from messaging.models import Direction, Message, MessageStatus
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def suggestion_for(name: str, phone: str, text: str) -> AISuggestion:
    KnowledgeEntry.objects.bulk_create(KnowledgeEntry(question=q, answer=a, tags=t) for q, a, t in FAQ)
    contact = Contact.objects.create(name=name, phone=phone, opt_in_whatsapp=True,
                                     last_inbound_message_at=timezone.now() - timedelta(minutes=5))  # fmt: skip
    message = Message.objects.create(contact=contact, channel="whatsapp", direction=Direction.INBOUND, content=text,
                                     status=MessageStatus.RECEIVED, created_at=contact.last_inbound_message_at,
                                     origination_phone_number_id=settings.WHATSAPP_PHONE_NUMBER_IDS[0])  # fmt: skip
    return services.suggestion_generate(message.pk)


def assert_no_template_syntax(page) -> None:
    text = page.locator("body").inner_text()
    assert "{%" not in text and "{{" not in text and "{#" not in text


def test_an_operator_edits_and_approves_a_suggestion_on_the_agent_page_then_rates_it(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    suggestion = suggestion_for("Asha Rao", "+919876500001", "What are your opening hours on Sunday?")

    page.goto("/")
    page.click("#nav a[data-nav=agent]")
    page.wait_for_url("**/agent/")
    card = page.locator(f"[data-suggestion='{suggestion.pk}']")
    expect(card.locator("[data-testid=suggestion-source]")).to_contain_text("From the knowledge base")
    expect(card.locator("[data-testid=suggestion-query]")).to_have_text("What are your opening hours on Sunday?")
    expect(card.locator("[data-testid=suggestion-text]")).to_have_value("We are open on Sundays from 10:00 to 14:00.")
    assert_house_style(page)
    assert_no_template_syntax(page)
    screenshot(page, "agent-queue")

    card.locator("[data-testid=suggestion-text]").fill("We are open on Sundays from 10:00 to 14:00. See you!")
    card.locator("[data-testid=approve]").click()

    expect(page.locator(".flash")).to_contain_text("Approved")
    expect(page.locator("[data-testid=agent-empty]")).to_be_visible()
    expect(page.locator("[data-testid=decision-status]").first).to_have_text("Edited and approved")
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.EDITED
    assert suggestion.sent_message.content == "We are open on Sundays from 10:00 to 14:00. See you!"

    page.locator(f"tr[data-suggestion='{suggestion.pk}'] input[value=useful]").check()
    page.locator(f"tr[data-suggestion='{suggestion.pk}'] input[name=comment]").fill("Right answer")
    page.locator(f"tr[data-suggestion='{suggestion.pk}'] [data-testid=feedback-submit]").click()
    expect(page.locator("[data-testid=feedback]").first).to_have_text("Useful: Right answer")
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        assert no_horizontal_overflow(page), name


def test_the_suggestion_appears_beside_the_dm_composer_and_a_rejection_needs_a_reason(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    suggestion = suggestion_for("Ravi Kumar", "+919876500002", "Do you ship to Mumbai?")

    page.goto(f"/dm/{suggestion.contact_id}/")
    panel = page.locator("[data-testid=dm-suggestion]")
    expect(panel).to_contain_text("Suggested reply")
    expect(panel.locator("[data-testid=suggestion-text]")).to_have_value(
        "Yes, delivery to Mumbai takes 3 to 5 working days."
    )
    assert_no_template_syntax(page)
    screenshot(page, "dm-suggestion")

    panel.locator("[data-testid=reject]").click()  # the reason is required: the browser holds the form
    assert AISuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.PENDING
    panel.locator("[data-testid=reject-reason]").fill("We stopped shipping to Mumbai")
    panel.locator("[data-testid=reject]").click()

    page.wait_for_url(f"**/dm/{suggestion.contact_id}/")
    expect(page.locator(".flash")).to_contain_text("Rejected")
    expect(page.locator("[data-testid=dm-suggestion]")).to_have_count(0)
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.reject_reason) == (SuggestionStatus.REJECTED, "We stopped shipping to Mumbai")


def test_a_suggestion_drafted_while_the_conversation_is_open_appears_without_a_reload(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    contact = Contact.objects.create(name="Kiran", phone="+919876500004", opt_in_whatsapp=True,
                                     last_inbound_message_at=timezone.now() - timedelta(minutes=5))  # fmt: skip
    page.goto(f"/dm/{contact.pk}/")
    page.evaluate("window.__marker = 'no reload'")
    expect(page.locator("[data-testid=dm-suggestion]")).to_have_count(0)

    suggestion = suggestion_for("Kiran 2", "+919876500005", "How can I reset my password?")
    AISuggestion.objects.filter(pk=suggestion.pk).update(contact=contact)

    expect(page.locator("[data-testid=dm-suggestion] [data-testid=suggestion-text]")).to_have_value(
        "Use 'Forgot password' on the sign-in page; the link is valid for one hour.", timeout=15_000
    )
    assert page.evaluate("window.__marker") == "no reload"
    assert page.locator("[data-testid=dm-suggestion] input[name=next]").first.get_attribute("value") == (
        f"/dm/{contact.pk}/"
    )


def test_a_viewer_sees_the_suggestion_without_decision_buttons(browser_page, login_as):
    page = browser_page
    login_as(page, "Viewer")
    suggestion = suggestion_for("Meera", "+919876500003", "How do I get a refund?")

    page.goto("/agent/")

    card = page.locator(f"[data-suggestion='{suggestion.pk}']")
    expect(card).to_contain_text("Refunds are paid within 30 days")
    expect(card.locator("[data-testid=approve]")).to_have_count(0)
