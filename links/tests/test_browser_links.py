"""Link in a real browser: create a short link, follow it, read its stats page; follow a personal link
from a bulk job and see the click on the job's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bulk import execution
from bulk.models import JobStatus
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create
from contacts.models import Contact
from links.models import Click, PersonalLink
from links.tests.conftest import BROWSER_UA
from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def as_a_phone_browser(page) -> None:
    # Headless Chromium says "HeadlessChrome", which (rightly) counts as a fetcher, not a person.
    page.set_extra_http_headers({"User-Agent": BROWSER_UA})


def test_an_operator_creates_a_link_follows_it_and_reads_its_stats(browser_page, login_as, live_server):
    page = browser_page
    login_as(page, "Operator")
    page.goto("/")
    page.click("#nav a[data-nav=link]")
    page.wait_for_url("**/link/")

    # A bad destination is explained and what was typed stays.
    page.click("summary:has-text('New short link')")
    page.fill("#id_destination", "javascript:alert(1)")
    page.fill("#id_slug", "open-day")
    page.click("button:has-text('Create short link')")
    expect(page.locator(".field-error")).to_contain_text("Only http:// and https:// addresses")
    expect(page.locator("#id_slug")).to_have_value("open-day")

    # The destination is a page of this server (the machine has no other network).
    page.fill("#id_destination", f"{live_server.url}/healthz/live")
    page.fill("#id_utm_source", "poster")
    page.click("button:has-text('Create short link')")
    expect(page.locator("h1")).to_have_text("/l/open-day")
    stats_url = page.url

    as_a_phone_browser(page)
    for _ in range(3):
        page.goto("/l/open-day")
        assert page.url == f"{live_server.url}/healthz/live?utm_source=poster"
    preview = page.request.get("/l/open-day", headers={"User-Agent": "WhatsApp/2.23.20.0 A"}, max_redirects=0)
    assert preview.status == 302
    assert Click.objects.count() == 3

    for width in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(stats_url)
        expect(page.locator("[data-count=clicks]")).to_have_text("3")
        expect(page.locator("[data-testid=clicks-chart] rect.bar[data-count='3']")).to_have_count(1)
        expect(page.locator("[data-testid=devices]")).to_contain_text("mobile")
        page.wait_for_function("() => document.querySelector('[data-testid=qr]').naturalWidth > 0")
        assert no_horizontal_overflow(page)
        assert_house_style(page)
        screenshot(page, "link-stats")

    with page.expect_download() as download:
        page.click("[data-testid=clicks-csv]")
    lines = download.value.path().read_text().splitlines()
    assert lines[0] == "clicked_at,device,referrer_host,contact_id,bulk_job_id" and len(lines) == 4

    page.click("[data-testid=toggle]")
    expect(page.locator("[data-testid=link-state]")).to_contain_text("Off")
    assert page.request.get("/l/open-day", headers={"User-Agent": BROWSER_UA}, max_redirects=0).status == 404


def test_a_personal_link_from_a_bulk_job_shows_its_click_on_the_job_page(
    browser_page, login_as, live_server, reset_aws, settings
):
    settings.SEND_MODE = "DRY_RUN"
    settings.RATE_LIMIT_SMS = 10_000.0
    page = browser_page
    operator = login_as(page, "Operator")
    from links.services import link_create

    link_create(user=operator, slug="bulk-offer", destination=f"{live_server.url}/healthz/live")
    contacts = [Contact.objects.create(name=f"Buyer {n}", phone=f"+91971000{n:04d}", opt_in_sms=True) for n in range(4)]
    host = live_server.url.split("://", 1)[1].split(":")[0]
    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content=f"Offer: http://{host}/l/bulk-offer"),
        contact_ids=[str(c.pk) for c in contacts],
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=operator, count=job.preflight["willSend"])
    for chunk_id in job.chunks.values_list("pk", flat=True):
        execution.chunk_process(chunk_id)
    personal = PersonalLink.objects.get(contact=contacts[0], bulk_job=job)

    as_a_phone_browser(page)
    page.goto(f"/l/bulk-offer/{personal.token}")  # as the recipient, from the message
    assert page.url.startswith(f"{live_server.url}/healthz/live")

    page.goto(f"/bulk/{job.pk}/")
    block = page.locator("[data-testid=job-clicks]")
    expect(block.locator("[data-count=clicks]")).to_have_text("1")
    expect(block.locator("[data-count=clickers]")).to_have_text("1")
    expect(block.locator("[data-count=ctr]")).to_have_text("25.0%")
    screenshot(page, "link-bulk-job-clicks")

    page.goto(f"/bulk/{job.pk}/funnel/")  # the click is a step of the job's funnel too
    clicked = page.locator("[data-testid=funnel] tr[data-step=clicked]")
    expect(clicked.locator("[data-count=clicked]")).to_have_text("1")
    expect(clicked).to_contain_text("25.0% of sent")

    page.goto(f"/contacts/{contacts[0].pk}/")
    expect(page.locator("[data-testid=contact-clicks]")).to_contain_text("/l/bulk-offer")
