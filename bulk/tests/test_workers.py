"""Bulk jobs end to end with REAL Celery workers on SQS (moto_server) and PostgreSQL, in DRY_RUN.

What a duplicate send would look like here: a contact with two Message rows (every send, dry run
or live, is one Message), or a recipient SENT twice. What a stranded recipient would look like: a
recipient still PENDING or SENDING once the job has finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time

import pytest
from django.conf import settings as django_settings
from django.db.models import Count

from bulk.errors import BulkConfirmationError, BulkTierError
from bulk.models import (
    FINAL_RECIPIENT_STATUSES,
    OUTCOME_UNKNOWN,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    ChunkStatus,
    JobStatus,
    RecipientStatus,
)
from bulk.services import (
    BulkMessage,
    bulk_job_cancel,
    bulk_job_confirm,
    bulk_job_create,
    bulk_job_pause,
    bulk_job_resume,
)
from bulk.tasks import bulk_chunk_process
from conftest import wait_until
from messaging.models import Message
from messaging.tier import tier_reserve
from wecare import aws

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PHONE_A = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]
# Workers of these tests: a short chunk lease, so a takeover after SIGKILL happens within seconds.
WORKER_ENV = {"BULK_CHUNK_LEASE_SECONDS": "3", "BULK_SEND_THREADS": "4"}


def _create(user, contacts, **message) -> BulkJob:
    return bulk_job_create(
        user=user,
        channel="whatsapp",
        message=BulkMessage(**(message or {"content": "Your report is ready"})),
        contact_ids=[str(c.pk) for c in contacts],
    )


def _counts(job) -> dict[str, int]:
    rows = BulkRecipient.objects.filter(job=job).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def _assert_sent_at_most_once(job) -> None:
    """No contact got two messages; every SENT recipient has exactly its one message."""
    contacts = BulkRecipient.objects.filter(job=job).values_list("contact_id", flat=True)
    per_contact = Message.objects.filter(contact_id__in=contacts).values("contact_id").annotate(n=Count("pk"))
    assert max((row["n"] for row in per_contact), default=0) <= 1
    assert not BulkRecipient.objects.filter(job=job, status=RecipientStatus.SENT, message__isnull=True).exists()


def _report(key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=django_settings.REPORT_BUCKET, Key=key)["Body"].read()


def test_a_confirmed_1000_recipient_job_completes_with_a_correct_report_and_unconfirmed_or_over_tier_jobs_send_nothing(
    operator, make_contacts, approved_template, reset_aws, celery_worker_factory, settings
):
    contacts = make_contacts(1000)
    worker = celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=2, extra_env=WORKER_ENV)

    # The confirmation gate: nothing is queued until the exact will-send count is confirmed.
    job = _create(operator, contacts)
    assert job.status == JobStatus.AWAITING_CONFIRMATION
    assert job.preflight["willSend"] == 1000
    with pytest.raises(BulkConfirmationError):
        bulk_job_confirm(job_id=job.pk, user=operator, count=999)
    time.sleep(2)
    assert not BulkJobChunk.objects.filter(job=job).exists()
    assert Message.objects.count() == 0

    # Tier rejection: a template to 6 contacts outside the window, with a tier of 5 and 2 used.
    settings.WHATSAPP_TIER_LIMIT = 5
    for n in range(2):
        tier_reserve(PHONE_A, f"22222222-2222-4222-8222-{n:012d}")
    outside = make_contacts(6, in_window=False)
    with pytest.raises(BulkTierError):
        _create(
            operator, outside, template_name="order_update", template_language="en_US", template_parameters=["A", "1"]
        )
    rejected = BulkJob.objects.get(status=JobStatus.REJECTED)
    assert not rejected.chunks.exists()

    # Confirmed: ten chunks of exactly 100 on bulk-queue, sent by the worker.
    started = time.monotonic()
    job = bulk_job_confirm(job_id=job.pk, user=operator, count=1000)
    assert job.status in (JobStatus.PENDING, JobStatus.IN_PROGRESS)  # the worker may have started already
    assert list(job.chunks.values_list("end_sequence", flat=True).order_by("sequence")) == list(range(100, 1001, 100))
    wait_until(
        lambda: (
            BulkJob.objects.get(pk=job.pk).status == JobStatus.COMPLETED
            and BulkJob.objects.get(pk=job.pk).report_s3_key
        ),
        timeout=120,
        message=f"the job to complete; worker log:\n{worker.log()[-3000:]}",
    )
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    assert (job.total_recipients, job.sent_count, job.failed_count, job.pending_count) == (1000, 1000, 0, 0)
    _assert_sent_at_most_once(job)
    assert Message.objects.filter(contact__in=contacts, dry_run=True).count() == 1000
    assert Message.objects.filter(contact__in=outside).count() == 0

    report = json.loads(_report(job.report_s3_key))
    assert job.report_s3_key == f"{django_settings.REPORT_PREFIX}{job.pk}-complete.json"
    assert {k: report[k] for k in ("jobId", "channel", "status", "totalRecipients", "sentCount")} == {
        "jobId": str(job.pk),
        "channel": "whatsapp",
        "status": "COMPLETED",
        "totalRecipients": 1000,
        "sentCount": 1000,
    }
    assert (report["failedCount"], report["cancelledCount"], report["skippedCount"]) == (0, 0, 0)
    assert report["createdBy"] == operator.email
    assert report["createdAt"] and report["completedAt"] and report["duration"] > 0 and report["throughput"] > 0
    assert {row["contactId"] for row in report["recipients"]} == {str(c.pk) for c in contacts}
    assert {row["status"] for row in report["recipients"]} == {"SENT"}
    rows = list(csv.DictReader(io.StringIO(_report(job.report_csv_s3_key).decode())))
    assert len(rows) == 1000 and {row["status"] for row in rows} == {"SENT"}
    print(f"\n1000 recipients sent by 2 worker processes in {elapsed:.1f}s ({1000 / elapsed:.0f} messages/s)")


def test_pause_stops_new_sends_resume_continues_cancel_cancels_the_rest_and_a_duplicated_chunk_sends_nobody_twice(
    operator, make_contacts, reset_aws, celery_worker_factory, settings
):
    contacts = make_contacts(600)
    job = _create(operator, contacts)
    # Slow the sends down (the rate limit, shared by the worker) so there is a "mid-job" to act in.
    env = {**WORKER_ENV, "RATE_LIMIT_WHATSAPP_PER_PHONE": "40"}
    job = bulk_job_confirm(job_id=job.pk, user=operator, count=600)
    first_chunk = job.chunks.get(sequence=0)
    bulk_chunk_process.delay(str(first_chunk.pk))  # SQS delivering chunk 0 a second time
    worker = celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=2, extra_env=env)

    def sent() -> int:
        return _counts(job).get(RecipientStatus.SENT, 0)

    wait_until(lambda: sent() >= 60, timeout=60, message=f"sends to start; log:\n{worker.log()[-2000:]}")

    # Pause: in-flight sends finish, then nothing moves.
    bulk_job_pause(job_id=job.pk, user=operator)
    wait_until(lambda: RecipientStatus.SENDING not in _counts(job), timeout=30, message="in-flight sends to finish")
    paused_at = _counts(job)
    time.sleep(3)
    assert _counts(job) == paused_at
    assert paused_at[RecipientStatus.PENDING] > 0
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.PAUSED

    # Resume: continues where it stopped.
    bulk_job_resume(job_id=job.pk, user=operator)
    wait_until(lambda: sent() >= paused_at[RecipientStatus.SENT] + 60, timeout=60, message="sends to resume")

    # Cancel: the rest is cancelled, a partial report is written.
    bulk_job_cancel(job_id=job.pk, user=operator)
    wait_until(lambda: BulkJob.objects.get(pk=job.pk).report_s3_key, timeout=30, message="the partial report")
    job.refresh_from_db()
    counts = _counts(job)
    assert job.status == JobStatus.CANCELLED
    assert set(counts) <= {RecipientStatus.SENT, RecipientStatus.CANCELLED}
    assert counts[RecipientStatus.SENT] + counts[RecipientStatus.CANCELLED] == 600
    assert counts[RecipientStatus.SENT] > paused_at[RecipientStatus.SENT]
    assert job.report_s3_key.endswith(f"{job.pk}-partial.json")
    report = json.loads(_report(job.report_s3_key))
    assert (report["status"], report["sentCount"], report["cancelledCount"]) == (
        "CANCELLED",
        counts[RecipientStatus.SENT],
        counts[RecipientStatus.CANCELLED],
    )
    time.sleep(2)  # the queue's leftover chunk messages find a cancelled job and send nothing
    assert _counts(job) == counts
    _assert_sent_at_most_once(job)
    assert Message.objects.count() == counts[RecipientStatus.SENT]
    cancelled_ids = BulkRecipient.objects.filter(job=job, status=RecipientStatus.CANCELLED).values("contact_id")
    assert not Message.objects.filter(contact_id__in=cancelled_ids).exists()


def _pool_pid(chunk_owner: str) -> int:
    return int(chunk_owner.split(":")[1])


def test_a_worker_killed_with_sigkill_mid_chunk_neither_resends_nor_strands_anyone(
    operator, make_contacts, reset_aws, celery_worker_factory, settings
):
    contacts = make_contacts(300)
    job = _create(operator, contacts)
    env = {**WORKER_ENV, "RATE_LIMIT_WHATSAPP_PER_PHONE": "30"}
    first = celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=2, extra_env=env)
    job = bulk_job_confirm(job_id=job.pk, user=operator, count=300)

    # given: a chunk mid-way (some of its recipients sent, some not)
    def running_chunk():
        for chunk in BulkJobChunk.objects.filter(job=job, status=ChunkStatus.RUNNING).exclude(lease_owner=""):
            done = BulkRecipient.objects.filter(
                job=job, sequence__gte=chunk.start_sequence, sequence__lt=chunk.end_sequence,
                status=RecipientStatus.SENT,
            ).count()  # fmt: skip
            if 10 <= done <= 70:
                return chunk
        return None

    chunk = wait_until(running_chunk, timeout=60, message=f"a chunk mid-way; log:\n{first.log()[-2000:]}")

    # when: its pool process is killed with SIGKILL, and another worker starts
    os.kill(_pool_pid(chunk.lease_owner), signal.SIGKILL)
    second = celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=2, extra_env=env)

    # then: the job completes; nobody is sent twice; nobody is left PENDING or SENDING
    wait_until(
        lambda: (
            BulkJob.objects.get(pk=job.pk).status == JobStatus.COMPLETED
            and BulkJob.objects.get(pk=job.pk).report_s3_key
        ),
        timeout=120,
        message=f"the job to complete; logs:\n{first.log()[-2500:]}\n---\n{second.log()[-2500:]}",
    )
    job.refresh_from_db()
    assert "WorkerLostError" in first.log() or "SIGKILL" in first.log()
    statuses = set(BulkRecipient.objects.filter(job=job).values_list("status", flat=True))
    assert statuses <= set(FINAL_RECIPIENT_STATUSES)
    _assert_sent_at_most_once(job)
    counts = _counts(job)
    assert counts.get(RecipientStatus.SENT, 0) + counts.get(RecipientStatus.FAILED, 0) == 300
    # Whoever may have reached the provider when the process died (in flight, the group created ahead,
    # outcomes not yet written: bulk.batch) is FAILED with an unknown outcome, not resent.
    failed = BulkRecipient.objects.filter(job=job, status=RecipientStatus.FAILED)
    assert set(failed.values_list("error_code", flat=True)) <= {OUTCOME_UNKNOWN}
    assert job.unknown_count == failed.count() <= 6 * int(WORKER_ENV["BULK_SEND_THREADS"])
    assert BulkJobChunk.objects.get(pk=chunk.pk).attempts >= 2
