"""A bulk job in a real browser, sent by a real Celery worker on the SQS emulator."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bulk.models import BulkJob, JobStatus
from contacts.models import Contact
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 40  # above the confirmation threshold (20); at 5 SMS/s the job runs for several seconds


def progress(page) -> tuple[int, int]:
    bar = page.locator("[data-testid=job-progress]")
    return int(bar.get_attribute("value")), int(bar.get_attribute("max"))


def test_a_bulk_job_goes_from_the_wizard_to_completion_with_pause_and_resume(
    browser_page, login_as, celery_worker_factory, reset_aws, settings
):
    for n in range(RECIPIENTS):
        Contact.objects.create(name=f"Customer {n}", phone=f"+91970000{n:04d}", opt_in_sms=True)
    Contact.objects.create(name="Customer without consent", phone="+919800000001", opt_in_sms=False)
    celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=2, extra_env={"BULK_SEND_THREADS": "2"})
    page = browser_page
    login_as(page, "Operator")
    page.goto("/")
    page.evaluate("window.__marker = 'one document'")

    # Recipients → message → pre-flight.
    page.click("#nav a[data-nav=bulk]")
    page.wait_for_url("**/bulk/")
    page.click("text=New bulk message")
    page.wait_for_url("**/bulk/new/")
    page.select_option("#bulk-channel", "sms")
    page.fill("#bulk-search", "customer")
    page.check("#include-not-opted-in")
    page.fill("#bulk-text", "Our shop opens at 9 tomorrow.")
    page.click("button:has-text('Check recipients')")

    # Pre-flight with counts by reason, then the exact count to confirm.
    expect(page.locator("[data-testid=job-status]")).to_have_text("Awaiting confirmation")
    job = BulkJob.objects.get()
    assert job.preflight["willSend"] == RECIPIENTS, (job.preflight, job.source_details)
    expect(page.locator("[data-testid=will-send]")).to_have_text(str(RECIPIENTS))
    expect(page.locator("[data-testid=preflight-reasons]")).to_contain_text("OPT_IN_REQUIRED")
    screenshot(page, "bulk-preflight")
    page.fill("#confirm-count", str(RECIPIENTS - 1))
    page.click("button:has-text('Send to')")
    expect(page.locator(".flash")).to_contain_text(
        f"Confirm with the number of recipients the pre-flight says will be sent to: {RECIPIENTS}"
    )
    page.fill("#confirm-count", str(RECIPIENTS))
    page.click("button:has-text('Send to')")

    # Running: the bar moves by itself.
    expect(page.locator("#job-live")).to_have_attribute("data-status", "IN_PROGRESS", timeout=20_000)
    expect(page.locator("[data-count=sent]")).not_to_have_text("0", timeout=20_000)
    first, total = progress(page)
    assert total == RECIPIENTS + 1 and first > 1  # one skipped by the pre-flight, at least one sent
    screenshot(page, "bulk-running")
    later = first
    for _ in range(20):  # the page is not reloaded: the polled bar itself advances
        page.wait_for_timeout(300)
        later = progress(page)[0]
        if later > first:
            break
    assert first < later < total, (first, later, total)

    page.click("button:has-text('Pause')")
    expect(page.locator("[data-testid=job-status]")).to_have_text("Paused")
    page.wait_for_timeout(2500)  # the chunk in flight stops at its next recipient
    held, _ = progress(page)
    page.wait_for_timeout(2500)
    assert progress(page)[0] == held, "a paused job kept sending"
    assert held < total, "the job finished before it could be paused; raise RECIPIENTS"

    page.click("button:has-text('Resume')")
    expect(page.locator("[data-testid=job-status]")).to_have_text("Completed", timeout=60_000)
    done, total = progress(page)
    assert done == total
    expect(page.locator("[data-count=sent]")).to_have_text(str(RECIPIENTS))
    expect(page.locator("[data-count=skipped]")).to_have_text("1")
    expect(page.locator("[data-testid=sends-chart]")).to_be_visible()
    expect(page.locator("[data-testid=report-csv]")).to_be_visible(timeout=10_000)
    assert page.evaluate("window.__marker") == "one document"
    job = BulkJob.objects.get()
    assert job.status == JobStatus.COMPLETED and job.sent_count == RECIPIENTS

    for width in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": 800})
        for path, name in [("/bulk/", "bulk-list"), (f"/bulk/{job.pk}/", "bulk-job"), ("/bulk/new/", "bulk-new")]:
            page.goto(path)
            screenshot(page, name)
            assert no_horizontal_overflow(page), f"{path} overflows at {width}px"
            assert_house_style(page)
