"""The bulk wizard in a real browser: fields adapt to the channel and message kind, and the pre-flight
shows three recipients' rendered messages (and who is skipped for a missing value) before confirmation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bulk.models import BulkJob, JobStatus
from contacts.models import AttributeDefinition, Contact
from wecare.tests.pages_fixtures import assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CITIES = ["Pune", "Goa", "Agra"]


def test_the_wizard_adapts_to_channel_and_kind_and_the_preflight_shows_rendered_samples(
    browser_page, login_as, reset_aws
):
    AttributeDefinition.objects.create(name="city", type="text")
    for n in range(24):  # above the confirmation threshold (20): the job waits for confirmation
        Contact.objects.create(
            name=f"Sample{n} Person",
            phone=f"+91971000{n:04d}",
            opt_in_sms=True,
            attributes={"city": CITIES[n % 3]} if n < 22 else {},
        )
    Contact.objects.create(name="", phone="+919710009999", opt_in_sms=True, attributes={"city": "Goa"})
    page = browser_page
    login_as(page, "Operator")
    page.goto("/bulk/new/")

    # WhatsApp: the kinds show; text by default, then media (a file, a caption) and template fields.
    page.select_option("#bulk-channel", "whatsapp")
    expect(page.locator("#kind-template")).to_be_visible()
    expect(page.locator("#bulk-text")).to_be_visible()
    expect(page.locator("#bulk-subject")).to_be_hidden()
    expect(page.locator("#bulk-template")).to_be_hidden()
    page.check("#kind-media")
    expect(page.locator("#bulk-media")).to_be_visible()
    expect(page.locator("label[for=bulk-text]")).to_have_text("Caption", use_inner_text=True)
    page.check("#kind-template")
    expect(page.locator("#bulk-template")).to_be_visible()
    expect(page.locator("#bulk-button-0")).to_be_visible()
    expect(page.locator("#bulk-text")).to_be_hidden()
    # Email: subject and HTML, no WhatsApp kinds or template.
    page.select_option("#bulk-channel", "email")
    expect(page.locator("#bulk-subject")).to_be_visible()
    expect(page.locator("#bulk-html")).to_be_visible()
    expect(page.locator("#kind-template")).to_be_hidden()
    expect(page.locator("#bulk-template")).to_be_hidden()
    # SMS: the text alone.
    page.select_option("#bulk-channel", "sms")
    expect(page.locator("#bulk-text")).to_be_visible()
    expect(page.locator("label[for=bulk-text]")).to_have_text("Text", use_inner_text=True)
    for hidden in ("#bulk-subject", "#bulk-html", "#bulk-template", "#bulk-media", "#bulk-header"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("[data-testid=placeholder-help]")).to_contain_text("{{attr.city}}")
    screenshot(page, "bulk-new-sms")

    page.fill("#bulk-search", "")
    page.fill("#bulk-text", "Hi {{first_name}}, our {{attr.city|nearest}} clinic opens Monday.")
    with page.expect_response("**/bulk/new/preview/") as answer:
        page.click("[data-testid=preview-button]")
    assert answer.value.status == 200, answer.value.text()[:2000]
    assert answer.value.text().count('data-testid="wizard-sample"') == 3, answer.value.text()[:3000]
    expect(page.locator("[data-testid=wizard-sample]")).to_have_count(3)
    expect(page.locator("[data-testid=wizard-preview]")).to_contain_text("Nothing was stored or sent")
    expect(page.locator("[data-testid=wizard-sample]").first).to_contain_text("clinic opens Monday.")
    assert not BulkJob.objects.exists()  # the preview creates no job
    page.click("button:has-text('Check recipients')")

    expect(page.locator("[data-testid=job-status]")).to_have_text("Awaiting confirmation")
    job = BulkJob.objects.get()
    assert job.status == JobStatus.AWAITING_CONFIRMATION
    assert job.preflight["byReason"] == {"PLACEHOLDER_MISSING": 1}, job.preflight
    expect(page.locator("[data-testid=preflight-reasons]")).to_contain_text("PLACEHOLDER_MISSING")
    samples = page.locator("[data-testid=preflight-sample]")
    expect(samples).to_have_count(3)
    texts = [samples.nth(i).locator("[data-testid=sample-text]").inner_text() for i in range(3)]
    for sample in job.preflight["samples"]:
        assert sample["text"] in texts
        assert "{{" not in sample["text"] and sample["text"].startswith(f"Hi {sample['name'].split()[0]}, our ")
    assert all(" clinic opens Monday." in text for text in texts)
    screenshot(page, "bulk-preflight-samples")
    assert no_horizontal_overflow(page)
    assert_house_style(page)
