"""The import job in a real browser: upload, a live progress bar fed by a real worker, the report."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, ContactImportJob
from wecare.tests.pages_fixtures import assert_house_style, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = 12_000


def test_an_operator_watches_the_progress_bar_fill_and_then_reads_the_report(
    browser_page, login_as, celery_worker_factory, reset_aws, settings, tmp_path
):
    path = tmp_path / "contacts.csv"
    lines = ["name;phone;optInSms"]  # semicolons, as Excel writes in much of Europe
    lines += [f"Person {i};+9198{i:08d};{'true' if i % 2 else ''}" for i in range(1, ROWS + 1)]
    lines[5] = "Bad One;12345;"  # row 5, line 6
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    # Small batches: many progress updates, so the bar is seen moving.
    celery_worker_factory(
        queues=[settings.QUEUE_DEFAULT], concurrency=1, extra_env={"CONTACTS_IMPORT_BATCH_SIZE": "100"}
    )
    page = browser_page
    login_as(page, "Operator")

    page.goto("/contacts/import/")
    page.set_input_files("#id_file", str(path))
    page.click("button:has-text('Import')")
    page.wait_for_url("**/contacts/import/*/")
    job = ContactImportJob.objects.get()

    # The bar moves while the worker imports: a value strictly between 0 and 100 is shown.
    page.wait_for_function(
        "() => { const p = document.querySelector('[data-testid=import-progress]');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=60_000,
    )
    seen = page.locator("[data-testid=import-progress]").get_attribute("value")
    assert 0 < int(seen) < 100
    expect(page.locator("[data-testid=import-report]")).to_be_visible(timeout=120_000)

    expect(page.locator("[data-testid=import-status]")).to_have_text("Done")
    expect(page.locator("[data-testid=import-progress]")).to_have_attribute("value", "100")
    expect(page.locator("[data-count=read]")).to_have_text(f"{ROWS} of {ROWS}")
    expect(page.locator("[data-count=created]")).to_have_text(str(ROWS - 1))
    expect(page.locator("[data-count=rejected]")).to_have_text("1")
    row = page.locator("tr.import-rejected")
    expect(row).to_have_count(1)
    expect(row.locator("[data-label=Line]")).to_have_text("6")
    expect(row.locator("[data-label=Column]")).to_have_text("phone")
    expect(row.locator("[data-label=Reason]")).to_contain_text("'12345' is not a valid phone number")
    assert Contact.objects.count() == ROWS - 1
    job.refresh_from_db()
    assert job.status == "done"
    assert_house_style(page)
    screenshot(page, "contacts-import-report")
