"""A chunk that fails after its retries goes to bulk-dlq and is replayed; the sweeper repairs what crashes leave."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from bulk import execution
from bulk.models import (
    CHUNK_DEAD_LETTERED,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    ChunkStatus,
    JobStatus,
    RecipientStatus,
)
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create, bulk_job_retry_failed
from bulk.tasks import bulk_chunk_process
from messaging.dlq import dlq_replay
from messaging.models import DLQMessage, Message
from wecare import aws

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_limits(settings):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0


def _confirmed_job(user, contacts) -> BulkJob:
    job = bulk_job_create(
        user=user, channel="whatsapp", message=BulkMessage(content="Hello"), contact_ids=[str(c.pk) for c in contacts]
    )
    return bulk_job_confirm(job_id=job.pk, user=user, count=job.preflight["willSend"])


def _queue_messages(queue: str) -> list[dict]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])


def test_a_chunk_failing_after_its_retries_is_dead_lettered_and_the_replay_finishes_the_job(
    operator, make_contacts, reset_aws, monkeypatch, settings
):
    # given: chunk 1 ran; chunk 0 fails on every try (the database, say)
    job = _confirmed_job(operator, make_contacts(150))
    first, second = job.chunks.order_by("sequence")
    execution.chunk_process(second.pk)
    real_process = execution.chunk_process

    def broken(chunk_id, **kwargs):
        raise RuntimeError("connection to the database lost")

    monkeypatch.setattr(execution, "chunk_process", broken)

    # when: its last retry fails
    outcome = bulk_chunk_process.apply(args=[str(first.pk), settings.BULK_CHUNK_MAX_RETRIES]).get()

    # then: on bulk-dlq, its recipients FAILED (not stranded), the job FAILED with its report
    assert outcome == "dead-lettered"
    assert BulkJobChunk.objects.get(pk=first.pk).status == ChunkStatus.DEAD_LETTERED
    dead = BulkRecipient.objects.filter(job=job, error_code=CHUNK_DEAD_LETTERED)
    assert dead.count() == 100 and set(dead.values_list("status", flat=True)) == {RecipientStatus.FAILED}
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.failed_count) == (JobStatus.FAILED, 50, 100)
    assert job.report_s3_key.endswith("-complete.json")
    row = DLQMessage.objects.get(queue_name=settings.QUEUE_BULK_DLQ)
    assert row.payload == {"chunkId": str(first.pk)} and "database lost" in row.last_error
    # Retry failed leaves dead-lettered recipients to the replay (no double send).
    with pytest.raises(Exception, match="no failed recipients"):
        bulk_job_retry_failed(job_id=job.pk, user=operator)

    # when: the DLQ is replayed (the database is back)
    monkeypatch.setattr(execution, "chunk_process", real_process)
    result = dlq_replay(settings.QUEUE_BULK_DLQ)

    # then
    assert result.replayed == [f"bulk-chunk-{first.pk}"]
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.failed_count) == (JobStatus.COMPLETED, 150, 0)
    assert Message.objects.count() == 150
    report = json.loads(
        aws.client("s3").get_object(Bucket=django_settings.REPORT_BUCKET, Key=job.report_s3_key)["Body"].read()
    )
    assert (report["status"], report["sentCount"], report["failedCount"]) == ("COMPLETED", 150, 0)
    assert DLQMessage.objects.get(pk=row.pk).status == DLQMessage.Status.REPLAYED


def test_the_sweeper_requeues_a_chunk_whose_worker_died_and_finishes_a_job_left_open(
    operator, make_contacts, reset_aws, settings
):
    # given: a chunk RUNNING under a dead worker's expired lease, nothing on the queue for it
    job = _confirmed_job(operator, make_contacts(30))
    chunk = job.chunks.get()
    queue = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "") + settings.QUEUE_BULK
    aws.client("sqs").purge_queue(QueueUrl=aws.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"])
    BulkJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.RUNNING, lease_owner="dead", lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    BulkJob.objects.filter(pk=job.pk).update(status=JobStatus.IN_PROGRESS)

    swept = execution.sweep()

    assert swept["requeued"] == 1
    assert len(_queue_messages(queue)) == 1

    # given: every recipient settled but the job never marked finished (its worker died right then)
    execution.chunk_process(chunk.pk)
    BulkJob.objects.filter(pk=job.pk).update(
        status=JobStatus.IN_PROGRESS, report_s3_key="", updated_at=timezone.now() - timedelta(minutes=5)
    )

    swept = execution.sweep()

    job.refresh_from_db()
    assert swept["finished"] == 1
    assert job.status == JobStatus.COMPLETED and job.report_s3_key


def test_the_sweeper_settles_a_cancelled_jobs_dead_claims_without_sending_and_writes_its_partial_report(
    operator, make_contacts, reset_aws
):
    from bulk.services import bulk_job_cancel
    from messaging.models import MessageStatus
    from messaging.services import message_send, send_request_build

    # given: a worker claimed two recipients and died; the job was cancelled meanwhile
    job = _confirmed_job(operator, make_contacts(25))
    first, second = BulkRecipient.objects.filter(job=job).order_by("sequence")[:2]
    messages = []
    for recipient in (first, second):
        message = message_send(
            send_request_build(contact_id=recipient.contact_id, channel="whatsapp", text="Hello"),
            enqueue=False,
            audit=False,
        )
        BulkRecipient.objects.filter(pk=recipient.pk).update(status=RecipientStatus.SENDING, message=message)
        messages.append(message)
    Message.objects.filter(pk=messages[1].pk).update(locked_until=timezone.now() + timedelta(seconds=60), attempts=1)
    BulkJobChunk.objects.filter(job=job).update(
        status=ChunkStatus.RUNNING, lease_owner="dead", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    job = bulk_job_cancel(job_id=job.pk, user=operator)
    assert not job.report_s3_key  # two sends still open

    swept = execution.sweep()

    job.refresh_from_db()
    assert swept["settled"] == 2
    assert BulkRecipient.objects.get(pk=first.pk).status == RecipientStatus.CANCELLED
    assert BulkRecipient.objects.get(pk=second.pk).error_code == "OUTCOME_UNKNOWN"
    assert Message.objects.get(pk=messages[0].pk).status == MessageStatus.QUEUED  # never sent
    assert Message.objects.get(pk=messages[0].pk).attempts == 0
    assert job.report_s3_key.endswith("-partial.json")
    assert (job.cancelled_count, job.failed_count, job.unknown_count) == (24, 1, 1)
