"""Pre-flight: per recipient would-send or why not, totals by reason, and the WhatsApp tier."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from bulk.errors import BulkInputError, BulkTierError
from bulk.models import BulkJob, BulkJobChunk, BulkRecipient, JobStatus, RecipientStatus
from bulk.services import BulkMessage, bulk_job_create
from messaging.tier import tier_reserve

pytestmark = pytest.mark.django_db

PHONE_A, PHONE_B = settings.WHATSAPP_PHONE_NUMBER_IDS[:2]


def test_each_recipient_gets_would_send_or_the_gate_reason(operator, make_contact, reset_aws):
    # given
    ok = make_contact(opt_ins={"sms": True})
    no_opt_in = make_contact(opt_ins={"whatsapp": True})
    no_phone = make_contact(email="nophone@example.com", opt_ins={"sms": True})
    deleted = make_contact(opt_ins={"sms": True})
    deleted.deleted_at = timezone.now()
    deleted.save(update_fields=["deleted_at"])
    missing = "00000000-0000-4000-8000-000000000000"

    # when
    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Clinic closed on Friday"),
        contact_ids=[str(ok.pk), str(no_opt_in.pk), str(no_phone.pk), str(deleted.pk), missing, str(ok.pk)],
    )

    # then
    statuses = {r.contact_id or r.address: (r.status, r.error_code) for r in job.recipients.all()}
    assert statuses[ok.pk] == (RecipientStatus.PENDING, "")
    assert statuses[no_opt_in.pk] == (RecipientStatus.SKIPPED, "OPT_IN_REQUIRED")
    assert statuses[no_phone.pk] == (RecipientStatus.SKIPPED, "ADDRESS_MISSING")
    assert statuses[deleted.pk] == (RecipientStatus.SKIPPED, "CONTACT_NOT_FOUND")
    assert statuses[missing] == (RecipientStatus.SKIPPED, "CONTACT_NOT_FOUND")
    assert job.preflight["totalRecipients"] == 5
    assert job.preflight["willSend"] == 1
    assert job.preflight["willNotSend"] == 4
    assert job.preflight["duplicatesRemoved"] == 1
    assert job.preflight["byReason"] == {"ADDRESS_MISSING": 1, "CONTACT_NOT_FOUND": 2, "OPT_IN_REQUIRED": 1}
    assert job.skipped_count == 4 and job.pending_count == 1 and job.total_recipients == 5


def test_free_form_whatsapp_outside_the_window_needs_a_template(operator, make_contacts, reset_aws):
    inside = make_contacts(2, in_window=True)
    outside = make_contacts(3, in_window=False)

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(content="Your report is ready"),
        contact_ids=[str(c.pk) for c in inside + outside],
    )

    assert job.preflight["willSend"] == 2
    assert job.preflight["byReason"] == {"TEMPLATE_REQUIRED": 3}
    assert job.preflight["tier"]["conversationsToOpen"] == 0


def test_a_template_counts_business_initiated_conversations_against_the_remaining_tier(
    operator, make_contacts, approved_template, reset_aws
):
    outside = make_contacts(4, in_window=False)
    inside = make_contacts(2, in_window=True)

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(template_name="order_update", template_language="en_US", template_parameters=["A", "1"]),
        contact_ids=[str(c.pk) for c in outside + inside],
    )

    tier = job.preflight["tier"]
    assert tier["conversationsToOpen"] == 4
    assert tier["byPhoneNumber"][PHONE_A] == {
        "conversationsToOpen": 4,
        "remaining": settings.WHATSAPP_TIER_LIMIT,
        "limit": settings.WHATSAPP_TIER_LIMIT,
        "exceeded": False,
    }
    assert set(job.recipients.filter(opens_conversation=True).values_list("contact_id", flat=True)) == {
        c.pk for c in outside
    }
    assert job.status == JobStatus.PENDING  # 6 recipients: no confirmation needed


def test_a_whatsapp_job_that_would_exceed_the_tier_is_rejected_with_a_clear_error(
    operator, make_contacts, approved_template, reset_aws, settings
):
    # given: a tier of 5 with 2 used on the number, and 4 contacts outside the window
    settings.WHATSAPP_TIER_LIMIT = 5
    for _ in range(2):
        assert tier_reserve(PHONE_A, f"11111111-1111-4111-8111-{_:012d}")
    contacts = make_contacts(4, in_window=False)

    # when
    with pytest.raises(BulkTierError) as refused:
        bulk_job_create(
            user=operator,
            channel="whatsapp",
            message=BulkMessage(
                template_name="order_update",
                template_language="en_US",
                template_parameters=["A", "1"],
                origination_phone_number_id=PHONE_A,
            ),
            contact_ids=[str(c.pk) for c in contacts],
        )

    # then: stored REJECTED (so the per-recipient reasons can be read), nothing queued
    assert refused.value.code == "TIER_LIMIT"
    assert "4 to open, 3 left" in refused.value.message
    job = BulkJob.objects.get(pk=refused.value.details["jobId"])
    assert job.status == JobStatus.REJECTED
    assert job.preflight["tier"]["exceeded"] is True
    assert not BulkJobChunk.objects.filter(job=job).exists()


def test_conversations_already_open_cost_no_tier(operator, make_contacts, approved_template, reset_aws, settings):
    settings.WHATSAPP_TIER_LIMIT = 4
    contacts = make_contacts(5, in_window=False)
    # Two of them got a template in the last 24 h: their conversations are open; 2 of 4 left.
    assert tier_reserve(PHONE_A, contacts[0].pk)
    assert tier_reserve(PHONE_A, contacts[1].pk)
    message = BulkMessage(template_name="order_update", template_language="en_US", template_parameters=["A", "1"])

    # 5 business-initiated sends, but only 3 new conversations: 3 > 2 left
    with pytest.raises(BulkTierError) as refused:
        bulk_job_create(user=operator, channel="whatsapp", message=message, contact_ids=[str(c.pk) for c in contacts])
    rejected = BulkJob.objects.get(pk=refused.value.details["jobId"])
    assert rejected.preflight["tier"]["byPhoneNumber"][PHONE_A]["conversationsToOpen"] == 3
    assert rejected.preflight["tier"]["byPhoneNumber"][PHONE_A]["remaining"] == 2

    # 4 business-initiated sends, 2 new conversations: fits exactly
    job = bulk_job_create(
        user=operator, channel="whatsapp", message=message, contact_ids=[str(c.pk) for c in contacts[:4]]
    )
    assert job.status == JobStatus.PENDING
    assert job.preflight["tier"]["byPhoneNumber"][PHONE_A]["conversationsToOpen"] == 2


def test_a_message_the_gate_refuses_for_everyone_is_refused_and_nothing_is_stored(operator, make_contacts, reset_aws):
    contacts = make_contacts(3, in_window=False)

    with pytest.raises(BulkInputError) as refused:
        bulk_job_create(
            user=operator,
            channel="whatsapp",
            message=BulkMessage(template_name="no_such_template", template_language="en_US"),
            contact_ids=[str(c.pk) for c in contacts],
        )

    assert refused.value.code == "TEMPLATE_INVALID"
    assert not BulkJob.objects.exists()


def test_a_job_nobody_would_receive_is_rejected(operator, make_contacts, reset_aws):
    contacts = make_contacts(3, sms=False)

    with pytest.raises(BulkInputError) as refused:
        bulk_job_create(
            user=operator,
            channel="sms",
            message=BulkMessage(content="hello"),
            contact_ids=[str(c.pk) for c in contacts],
        )

    assert refused.value.code == "NO_SENDABLE_RECIPIENTS"
    job = BulkJob.objects.get()
    assert job.status == JobStatus.REJECTED
    assert job.preflight["byReason"] == {"OPT_IN_REQUIRED": 3}
    assert BulkRecipient.objects.filter(job=job, status=RecipientStatus.SKIPPED).count() == 3


def test_recipients_in_window_on_one_number_are_sent_from_that_number(operator, make_contacts, reset_aws):
    from messaging.models import Direction, Message

    contacts = make_contacts(2, in_window=True)
    Message.objects.create(
        contact=contacts[1],
        channel="whatsapp",
        direction=Direction.INBOUND,
        content="hi",
        status="received",
        origination_phone_number_id=PHONE_B,
        created_at=timezone.now() - timedelta(minutes=5),
    )

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(content="Your report is ready"),
        contact_ids=[str(c.pk) for c in contacts],
    )

    numbers = dict(job.recipients.values_list("contact_id", "origination_phone_number_id"))
    assert numbers == {contacts[0].pk: PHONE_A, contacts[1].pk: PHONE_B}
