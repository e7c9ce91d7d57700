"""The job funnel from status events in the real EUM/SNS format (the reference fixtures and events of
the same shape), replies within 72 h, failures by reason, pricing categories and cost, and the CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from bulk import funnel, pricing
from bulk.models import BulkJob, BulkRecipient
from bulk.services import BulkMessage, bulk_job_create
from bulk.tests.funnel_fixtures import funnel_events
from messaging import inbound
from messaging.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_limits(settings):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0


def test_the_funnel_counts_sent_delivered_read_replied_and_failed_by_reason_from_status_events(sent_job):
    job, sendable, refused = sent_job
    funnel_events(job, sendable)

    result = funnel.job_funnel(job)

    counts = {row.key: row.count for row in result.rows}
    assert counts == {"sent": 6, "delivered": 4, "read": 2, "replied": 1, "failed": 1, "clicked": 0}
    rates = {row.key: row.rate for row in result.rows}
    assert rates == {"sent": 100.0, "delivered": 66.7, "read": 33.3, "replied": 16.7, "failed": 16.7, "clicked": 0.0}
    assert result.failed_by_reason == [("131047", 1)]
    assert result.skipped_by_reason == [("OPT_IN_REQUIRED", 1)]
    assert {k: v for k, v in result.by_state.items() if v} == {
        "sent": 1, "delivered": 2, "read": 1, "replied": 1, "failed": 1, "skipped": 1,
    }  # fmt: skip
    a, b, c, d, e, f = sendable
    assert {r.contact_id: r.state for r in funnel.recipients_filtered(job)} == {
        a.pk: "delivered", b.pk: "failed", c.pk: "read", d.pk: "replied", e.pk: "delivered", f.pk: "sent",
        refused[0].pk: "skipped",
    }  # fmt: skip
    assert [r.contact_id for r in funnel.recipients_filtered(job, state="failed", reason="131047")] == [b.pk]
    with pytest.raises(ValueError):
        funnel.recipients_filtered(job, state="clicked")


def test_extra_rows_join_the_funnel_without_changing_its_callers(sent_job):
    job, _, _ = sent_job

    def clicks(job, built):
        return [funnel.FunnelRow("clicked", "Clicked a link", 2, built.count("sent"), "of sent")]

    result = funnel.job_funnel(job, extra_rows=[clicks])

    assert (result.rows[-1].key, result.rows[-1].rate) == ("clicked", 33.3)


def test_each_whatsapp_send_records_its_pricing_category_and_the_running_cost_uses_it(
    sent_job, settings, operator, client
):
    job, sendable, _ = sent_job
    funnel_events(job, sendable)
    a, b, c, d, e, f = sendable
    outbound = Message.objects.filter(contact__in=sendable, direction="outbound")
    category = dict(outbound.values_list("contact_id", "pricing_category"))
    assert (category[a.pk], category[e.pk], category[c.pk]) == ("utility", "marketing", "")

    dry = pricing.job_running_cost(job)
    assert (dry["amount"], dry["dryRun"]) == ("0.0000", 5)  # dry-run sends reach no provider; B failed

    outbound.update(dry_run=False)  # as live sends would be
    cost = pricing.job_running_cost(job)
    # A utility (IN 0.0014) + E marketing (IN 0.0107) + C, D, F service (free); B failed: not charged.
    assert Decimal(cost["amount"]) == Decimal("0.0121")
    assert (cost["messages"], cost["reported"], cost["currency"]) == (5, 2, "USD")
    client.force_login(operator)
    assert "Running cost: <strong>0.0121 USD</strong>" in client.get(f"/bulk/{job.pk}/").content.decode()
    settings.WHATSAPP_PRICE_TABLE = {"marketing": {"GB": 1}}
    assert pricing.job_running_cost(job)["unpriced"] == 5


def test_the_preflight_estimates_the_cost_from_the_price_table_by_template_category_and_country(
    operator, make_contact, approved_template, reset_aws, settings, client
):
    settings.BULK_CONFIRMATION_THRESHOLD = 2  # the estimate is read before confirming
    contacts = [make_contact(phone=f"+91970000{n:04d}", opt_ins={"whatsapp": True}) for n in range(3)]
    contacts.append(make_contact(phone="+14255550150", opt_ins={"whatsapp": True}))

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(template_name="order_update", template_language="en_US", template_parameters=["A", "1"]),
        contact_ids=[str(c.pk) for c in contacts],
    )

    cost = job.preflight["cost"]
    assert (cost["category"], cost["currency"], cost["messages"]) == ("utility", "USD", 4)
    assert Decimal(cost["amount"]) == Decimal("0.0082")  # 3 × IN 0.0014 + US 0.004
    assert sorted(BulkRecipient.objects.filter(job=job).values_list("country", flat=True)) == ["IN", "IN", "IN", "US"]
    assert job.status == "AWAITING_CONFIRMATION"
    client.force_login(operator)
    page = client.get(f"/bulk/{job.pk}/").content.decode()
    assert "0.0082 USD (4 utility messages)" in page


def test_the_funnel_csv_is_formula_safe_keeps_phone_numbers_and_is_audited(sent_job, viewer, operator, client):
    job, sendable, _ = sent_job
    funnel_events(job, sendable)
    sendable[5].name = '=HYPERLINK("http://evil.example","x")'
    sendable[5].save(update_fields=["name"])
    client.force_login(operator)

    response = client.get(f"/bulk/{job.pk}/funnel.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 7
    evil = next(r for r in rows if r["contactId"] == str(sendable[5].pk))
    assert evil["name"].startswith("'=") and evil["address"] == sendable[5].phone and evil["state"] == "sent"
    assert AuditLog.objects.filter(action="bulk_job.funnel_export", user=operator).exists()
    only_failed = client.get(f"/bulk/{job.pk}/funnel.csv?state=failed")
    assert len(list(csv.DictReader(io.StringIO(b"".join(only_failed.streaming_content).decode())))) == 1
    assert client.get(f"/bulk/{job.pk}/funnel.csv?state=bogus").status_code == 400


def test_the_funnel_page_filters_recipients_and_a_user_without_recipient_access_is_refused(
    sent_job, operator, make_user, client
):
    job, sendable, _ = sent_job
    funnel_events(job, sendable)
    client.force_login(operator)

    page = client.get(f"/bulk/{job.pk}/funnel/?state=failed").content.decode()

    assert 'data-count="replied">1<' in page
    assert page.count('data-state="failed"') == 1 and 'data-state="sent"' not in page
    assert "131047" in page and 'data-testid="funnel-chart"' in page
    assert 'data-testid="funnel-link"' in client.get(f"/bulk/{job.pk}/").content.decode()

    nobody = make_user(None)
    client.force_login(nobody)
    assert client.get(f"/bulk/{job.pk}/funnel/").status_code == 403
    assert BulkJob.objects.filter(pk=job.pk).exists()


def test_the_batched_status_path_records_the_pricing_category_too(make_contact):
    contact = make_contact(opt_ins={"whatsapp": True})
    message = Message.objects.create(
        contact=contact, channel="whatsapp", direction="outbound", status="sent", whatsapp_message_id="wamid.batch1"
    )
    status = {"id": "wamid.batch1", "status": "delivered", "timestamp": str(int(timezone.now().timestamp())),
              "pricing": {"billable": True, "pricing_model": "PMP", "category": "Authentication"}}  # fmt: skip

    inbound.statuses_apply([(status, "")])

    message.refresh_from_db()
    assert (message.status, message.pricing_category) == ("delivered", "authentication")
