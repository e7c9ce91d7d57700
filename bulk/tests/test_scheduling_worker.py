"""A scheduled job survives a restart: its schedule is a database row that beat reads, not a timer or a
delayed queue message. REAL Celery worker with embedded beat (DatabaseScheduler) on SQS (moto_server)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from bulk.models import BulkJob, BulkRecipient, JobStatus, RecipientStatus
from bulk.services import BulkMessage, bulk_job_create
from conftest import wait_until
from messaging.models import Message

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Beat ticks every second here (production: BULK_SCHEDULER_SECONDS, 30 s by default).
WORKER_ENV = {"BULK_SCHEDULER_SECONDS": "1", "BULK_SEND_THREADS": "2"}


def test_a_scheduled_job_starts_at_its_time_after_the_worker_and_beat_restart(
    operator, make_contacts, reset_aws, celery_worker_factory, settings
):
    contacts = make_contacts(5)
    due = timezone.now() + timedelta(seconds=12)
    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(content="Doors open at nine"),
        contact_ids=[str(c.pk) for c in contacts],
        scheduled_for=due,
    )
    assert job.status == JobStatus.SCHEDULED

    # A worker with beat runs (and ticks) before the job is due, then stops.
    first = celery_worker_factory(queues=[settings.QUEUE_BULK], extra_env=WORKER_ENV, beat=True)
    wait_until(
        lambda: first.log().count("bulk.tasks.bulk_scheduler_tick") >= 2, timeout=60,
        message=f"beat to tick; log:\n{first.log()[-3000:]}",
    )  # fmt: skip
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.SCHEDULED
    first.stop()

    # The time passes with nothing running: nothing starts the job, nothing is lost.
    time.sleep(max(0.0, (due - timezone.now()).total_seconds()) + 1)
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.SCHEDULED
    assert not Message.objects.filter(contact__in=contacts).exists()

    # A new worker and beat start the job from the database and send it, each recipient once.
    second = celery_worker_factory(queues=[settings.QUEUE_BULK], extra_env=WORKER_ENV, beat=True)
    wait_until(
        lambda: BulkJob.objects.get(pk=job.pk).status == JobStatus.COMPLETED, timeout=90,
        message=f"the scheduled job to complete; log:\n{second.log()[-3000:]}",
    )  # fmt: skip
    job.refresh_from_db()
    assert job.started_at >= due
    assert set(BulkRecipient.objects.filter(job=job).values_list("status", flat=True)) == {RecipientStatus.SENT}
    assert Message.objects.filter(contact__in=contacts).count() == 5
