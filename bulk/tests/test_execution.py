"""Chunk execution in-process (the worker tests run the same code under real Celery workers).

Runs with transaction=True: the chunk's sender threads use their own database connections.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.stub import ANY, Stubber
from django.conf import settings as django_settings
from django.utils import timezone

from bulk import execution
from bulk.models import (
    OUTCOME_UNKNOWN,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    ChunkStatus,
    JobStatus,
    RecipientStatus,
)
from bulk.services import BulkMessage, bulk_job_cancel, bulk_job_confirm, bulk_job_create, bulk_job_pause
from contacts.services import contact_set_opt_in
from messaging.models import Message, MessageStatus
from messaging.services import message_send, send_request_build
from wecare import aws

pytestmark = pytest.mark.django_db(transaction=True)

PHONE_A = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]


@pytest.fixture(autouse=True)
def fast_limits(settings):
    # The token buckets are exercised by the worker tests and the benchmark; here they only slow us down.
    # (Not above 10,000/s: a 1/rate of 1e-05 is sent in exponent form, which moto_server cannot add.)
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0


def _job(user, contacts, **message) -> BulkJob:
    message = message or {"content": "Your report is ready"}
    job = bulk_job_create(
        user=user,
        channel="whatsapp",
        message=BulkMessage(origination_phone_number_id=PHONE_A, **message),
        contact_ids=[str(c.pk) for c in contacts],
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=user, count=job.preflight["willSend"])
    return job


def _run_all_chunks(job: BulkJob) -> None:
    for chunk_id in job.chunks.order_by("sequence").values_list("pk", flat=True):
        execution.chunk_process(chunk_id)


def test_a_job_sends_each_recipient_exactly_once_and_its_counters_are_exact(operator, make_contacts, reset_aws):
    contacts = make_contacts(230)
    job = _job(operator, contacts)
    assert list(job.chunks.order_by("sequence").values_list("start_sequence", "end_sequence")) == [
        (0, 100),
        (100, 200),
        (200, 230),
    ]

    _run_all_chunks(job)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert (job.total_recipients, job.sent_count, job.failed_count, job.pending_count) == (230, 230, 0, 0)
    messages = Message.objects.filter(contact__in=contacts)
    assert messages.count() == 230
    assert set(messages.values_list("status", "dry_run")) == {(MessageStatus.SENT, True)}
    assert BulkRecipient.objects.filter(job=job, message__isnull=True).count() == 0
    assert set(job.chunks.values_list("status", flat=True)) == {ChunkStatus.DONE}
    assert job.report_s3_key.endswith(f"{job.pk}-complete.json")


def test_processing_a_chunk_twice_sends_nobody_twice(operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(120))
    chunk = job.chunks.get(sequence=0)

    first = execution.chunk_process(chunk.pk)
    second = execution.chunk_process(chunk.pk)

    assert (first.outcome, first.processed) == ("done", 100)
    assert second.outcome == "already-done"
    assert Message.objects.count() == 100


def test_a_second_delivery_waits_while_the_first_worker_holds_the_lease(operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(30))
    chunk = job.chunks.get()
    BulkJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.RUNNING, lease_owner="other-worker", lease_expires_at=timezone.now() + timedelta(seconds=30)
    )

    with pytest.raises(execution.LeaseHeld) as held:
        execution.chunk_process(chunk.pk)

    assert 29 <= held.value.retry_after <= 32
    assert Message.objects.count() == 0


def test_a_worker_taking_over_a_dead_workers_chunk_never_resends_and_strands_nobody(operator, make_contacts, reset_aws):
    # given: a worker claimed three recipients and died; its lease has expired
    job = _job(operator, make_contacts(10))
    chunk = job.chunks.get()
    first, second, third = BulkRecipient.objects.filter(job=job).order_by("sequence")[:3]

    def claimed(recipient) -> Message:
        request = send_request_build(
            contact_id=recipient.contact_id,
            channel="whatsapp",
            text="Your report is ready",
            origination_phone_number_id=PHONE_A,
        )
        message = message_send(request, enqueue=False, audit=False)
        BulkRecipient.objects.filter(pk=recipient.pk).update(status=RecipientStatus.SENDING, message=message)
        return message

    # 1: died inside the delivery, after the provider call (claim held, one attempt)
    in_delivery = claimed(first)
    Message.objects.filter(pk=in_delivery.pk).update(locked_until=timezone.now() + timedelta(seconds=60), attempts=1)
    # 2: the message was sent, the worker died before recording it on the recipient
    recorded = claimed(second)
    Message.objects.filter(pk=recorded.pk).update(status=MessageStatus.SENT, attempts=1, dry_run=True)
    # 3: claimed and stored, never handed to the provider
    never_sent = claimed(third)
    BulkJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.RUNNING, lease_owner="dead-worker", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    # when: the redelivered chunk runs
    result = execution.chunk_process(chunk.pk)

    # then
    assert result.outcome == "done"
    states = {r.pk: (r.status, r.error_code) for r in BulkRecipient.objects.filter(job=job)}
    assert states[first.pk] == (RecipientStatus.FAILED, OUTCOME_UNKNOWN)
    assert states[second.pk] == (RecipientStatus.SENT, "")
    assert states[third.pk] == (RecipientStatus.SENT, "")
    assert Message.objects.get(pk=never_sent.pk).attempts == 1
    assert Message.objects.get(pk=in_delivery.pk).attempts == 1  # not resent
    assert Message.objects.count() == 10  # one per recipient, none twice
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert (job.sent_count, job.failed_count, job.unknown_count) == (9, 1, 1)
    report = json.loads(
        aws.client("s3").get_object(Bucket=django_settings.REPORT_BUCKET, Key=job.report_s3_key)["Body"].read()
    )
    unknown = [row for row in report["recipients"] if row["status"] == "FAILED"]
    assert [row["errorCode"] for row in unknown] == [OUTCOME_UNKNOWN]
    assert "outcome unknown after worker crash" in unknown[0]["error"]


def test_a_paused_job_sends_nothing_until_resumed(operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(25))
    bulk_job_pause(job_id=job.pk, user=operator)

    result = execution.chunk_process(job.chunks.get().pk)

    assert result.outcome == "not-runnable"
    assert Message.objects.count() == 0
    assert BulkRecipient.objects.filter(job=job, status=RecipientStatus.PENDING).count() == 25


def test_cancel_cancels_the_remaining_recipients_and_writes_a_partial_report(operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(150))
    execution.chunk_process(job.chunks.get(sequence=0).pk)

    job = bulk_job_cancel(job_id=job.pk, user=operator)
    execution.chunk_process(job.chunks.get(sequence=1).pk)  # its message was still on the queue

    assert job.status == JobStatus.CANCELLED
    assert (job.sent_count, job.cancelled_count, job.pending_count) == (100, 50, 0)
    assert job.report_s3_key.endswith(f"{job.pk}-partial.json")
    assert Message.objects.count() == 100
    report = json.loads(
        aws.client("s3").get_object(Bucket=django_settings.REPORT_BUCKET, Key=job.report_s3_key)["Body"].read()
    )
    assert (report["status"], report["sentCount"], report["cancelledCount"]) == ("CANCELLED", 100, 50)


def test_consent_withdrawn_after_the_preflight_skips_that_recipient_only(operator, make_contacts, reset_aws):
    contacts = make_contacts(5)
    job = _job(operator, contacts)
    contact_set_opt_in(contact=contacts[2], channel="whatsapp", value=False, actor=None, source="api")

    _run_all_chunks(job)

    recipient = BulkRecipient.objects.get(job=job, contact=contacts[2])
    assert (recipient.status, recipient.error_code) == (RecipientStatus.SKIPPED, "OPT_IN_REQUIRED")
    assert recipient.message_id is None
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.skipped_count) == (JobStatus.COMPLETED, 4, 1)


def test_a_provider_refusal_fails_that_recipient_only(operator, make_contacts, reset_aws, settings):
    # given: LIVE sends against a stubbed provider; the second recipient's number is refused
    settings.SEND_MODE = "LIVE"
    settings.BULK_SEND_THREADS = 1  # the stub answers in order
    contacts = make_contacts(3)
    job = _job(operator, contacts)
    client = aws.client("socialmessaging", max_attempts=1)
    expected = {"originationPhoneNumberId": PHONE_A, "message": ANY, "metaApiVersion": ANY}
    with Stubber(client) as stub:
        stub.add_response("send_whatsapp_message", {"messageId": "aws-1"}, expected)
        stub.add_client_error(
            "send_whatsapp_message",
            service_error_code="ValidationException",
            service_message="Recipient phone number not valid",
            http_status_code=400,
            expected_params=expected,
        )
        stub.add_response("send_whatsapp_message", {"messageId": "aws-3"}, expected)

        _run_all_chunks(job)

        stub.assert_no_pending_responses()
    rows = list(BulkRecipient.objects.filter(job=job).order_by("sequence"))
    assert [r.status for r in rows] == [RecipientStatus.SENT, RecipientStatus.FAILED, RecipientStatus.SENT]
    assert rows[1].error_code == "ValidationException"
    assert "Recipient phone number not valid" in rows[1].error_details
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.failed_count) == (JobStatus.COMPLETED, 2, 1)
