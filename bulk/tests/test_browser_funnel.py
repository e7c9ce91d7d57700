"""The delivery funnel page in a real browser: from the job page to the funnel, its counts, chart,
failures by reason, the recipient filter and the CSV link."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bulk.tests.funnel_fixtures import funnel_events
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_reads_the_funnel_filters_failed_recipients_and_finds_the_csv(browser_page, login_as, sent_job):
    job, sendable, _ = sent_job
    funnel_events(job, sendable)
    page = browser_page
    login_as(page, "Operator")

    page.goto(f"/bulk/{job.pk}/")
    page.click("[data-testid=funnel-link]")
    page.wait_for_url(f"**/bulk/{job.pk}/funnel/")

    funnel = page.locator("[data-testid=funnel]")
    for step, count in {"sent": 6, "delivered": 4, "read": 2, "replied": 1, "failed": 1}.items():
        expect(funnel.locator(f"[data-count={step}]")).to_have_text(str(count))
    expect(funnel.locator("tr[data-step=delivered]")).to_contain_text("66.7% of sent")
    expect(page.locator("[data-testid=funnel-chart] polyline")).to_have_count(4)
    expect(page.locator("[data-testid=failed-reasons]")).to_contain_text("131047")
    expect(page.locator("[data-testid=skipped-reasons]")).to_contain_text("OPT_IN_REQUIRED")
    expect(page.locator("[data-testid=funnel-recipients] tbody tr")).to_have_count(7)
    screenshot(page, "bulk-funnel")

    page.select_option("#filter-state", "failed")
    page.click("[data-testid=recipient-filter] button:has-text('Filter')")
    page.wait_for_url("**state=failed**")
    rows = page.locator("[data-testid=funnel-recipients] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("131047")
    expect(page.locator("[data-testid=funnel-csv]")).to_have_attribute(
        "href", f"/bulk/{job.pk}/funnel.csv?state=failed&reason="
    )

    page.click("[data-testid=failed-reasons] a")  # a reason links to its recipients
    page.wait_for_url("**reason=131047**")
    expect(page.locator("#filter-reason")).to_have_value("131047")

    for width in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"/bulk/{job.pk}/funnel/")
        assert no_horizontal_overflow(page), f"the funnel page overflows at {width}px"
        assert_house_style(page)
