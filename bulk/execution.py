"""Running a bulk job's chunks: crash-safe, concurrent, pausable.

The guarantees, and what gives each:

- A recipient is sent to at most once. A worker claims the chunk's recipients with one conditional
  UPDATE (PENDING → SENDING, only while the job is runnable) and sends only those it claimed. Right
  before the provider call the recipient's Message is created, held, and linked to it: a claimed
  recipient without a message never reached the provider (bulk.batch sends in batches).
- No recipient is stranded. A chunk is taken with a lease that a heartbeat thread renews while the
  chunk runs. A second delivery of the same chunk (SQS is at-least-once) sees the live lease and
  retries after it; a worker killed with SIGKILL stops renewing it, so the redelivery (acks_late +
  reject_on_worker_lost) or the sweeper takes over once it expires. The new owner first settles the
  recipients the dead worker left SENDING: from their Message when it records an outcome, otherwise
  FAILED with OUTCOME_UNKNOWN — shown to operators, never silently resent.
- Pause and cancel are job states the claim itself checks; a running chunk re-reads the job's status
  (with its recipients' consent) every half second and stops its sends within one second.
- Counters are recomputed from the recipient rows (aggregates), never incremented in memory.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from bulk import sending
from bulk.batch import ChunkRun
from bulk.models import (
    CHUNK_DEAD_LETTERED,
    OUTCOME_UNKNOWN,
    RUNNABLE_JOB_STATUSES,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    ChunkStatus,
    JobStatus,
    RecipientStatus,
)
from wecare import alerts, logs, metrics
from wecare.errors import RetryLater

logger = logging.getLogger(__name__)

UNKNOWN_OUTCOME_DETAILS = (
    "outcome unknown after worker crash: the worker stopped after claiming this recipient and before "
    "recording the provider's answer. Not resent automatically; check the message before sending again."
)


class LeaseHeld(RetryLater):  # noqa: N818 - a state, not a failure
    """Another live worker holds the chunk; try again after ``retry_after`` seconds."""

    code = "LEASE_HELD"

    def __init__(self, chunk_id, retry_after: float):
        super().__init__(f"chunk {chunk_id} is being processed by another worker")
        self.retry_after = max(1.0, retry_after)


@dataclass
class ChunkResult:
    chunk_id: str
    outcome: str  # done | paused | not-runnable | already-done | dead-lettered
    processed: int = 0
    by_status: dict = field(default_factory=dict)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _lease_seconds() -> int:
    return settings.BULK_CHUNK_LEASE_SECONDS


def _chunk_recipients(chunk: BulkJobChunk):
    return BulkRecipient.objects.filter(
        job_id=chunk.job_id, sequence__gte=chunk.start_sequence, sequence__lt=chunk.end_sequence
    )


# --- counters and job completion ------------------------------------------------------------------


def job_counts(job_id) -> dict[str, int]:
    """Exact counts from the recipient rows (one aggregate query)."""
    rows = BulkRecipient.objects.filter(job_id=job_id)
    agg = rows.aggregate(
        total=Count("pk"),
        sent=Count("pk", filter=Q(status=RecipientStatus.SENT)),
        failed=Count("pk", filter=Q(status=RecipientStatus.FAILED)),
        skipped=Count("pk", filter=Q(status=RecipientStatus.SKIPPED)),
        cancelled=Count("pk", filter=Q(status=RecipientStatus.CANCELLED)),
        pending=Count("pk", filter=Q(status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING])),
        sending=Count("pk", filter=Q(status=RecipientStatus.SENDING)),
        unknown=Count("pk", filter=Q(status=RecipientStatus.FAILED, error_code=OUTCOME_UNKNOWN)),
    )
    return {key: int(value or 0) for key, value in agg.items()}


def job_refresh_counters(job_id) -> dict[str, int]:
    """Store the aggregate counts on the job row (a derived copy; the recipient rows are the truth)."""
    counts = job_counts(job_id)
    BulkJob.objects.filter(pk=job_id).update(
        total_recipients=counts["total"],
        sent_count=counts["sent"],
        failed_count=counts["failed"],
        skipped_count=counts["skipped"],
        cancelled_count=counts["cancelled"],
        pending_count=counts["pending"],
        unknown_count=counts["unknown"],
        updated_at=timezone.now(),
    )
    return counts


def job_maybe_finish(job_id) -> str | None:
    """Finish a job whose recipients all have a final status, with its report. Idempotent.

    Returns the status it finished with, or None if the job is not finished yet. The job row is
    locked, so exactly one caller makes the transition; the report is written before the status and
    report keys are committed, so nobody ever sees a finished job without its report (if S3 fails,
    nothing changes and the sweeper tries again).
    """
    from bulk.reports import report_write  # reports import execution's counters

    with transaction.atomic():
        job = BulkJob.objects.select_for_update(of=("self",)).select_related("created_by").get(pk=job_id)
        open_recipients = BulkRecipient.objects.filter(
            job_id=job_id, status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING]
        )
        fields = ["report_s3_key", "report_csv_s3_key", "updated_at"]
        if job.status in RUNNABLE_JOB_STATUSES:
            if open_recipients.exists():
                return None
            dead = job.chunks.filter(status=ChunkStatus.DEAD_LETTERED).exists()
            job.status = JobStatus.FAILED if dead else JobStatus.COMPLETED
            job.status_reason = "a chunk failed after its retries and is on bulk-dlq" if dead else ""
            job.completed_at = timezone.now()
            fields += ["status", "status_reason", "completed_at"]
        elif job.status == JobStatus.CANCELLED:
            if open_recipients.filter(status=RecipientStatus.SENDING).exists():
                return None  # in-flight sends finish first, then the partial report is written
        elif job.status not in (JobStatus.COMPLETED, JobStatus.FAILED):
            return None
        if not job.report_s3_key:
            job.report_s3_key, job.report_csv_s3_key = report_write(job)
        job.save(update_fields=fields)
        counts = job_refresh_counters(job_id)
    logger.info("bulk job %s finished %s: %s", job_id, job.status, counts)
    if "status" in fields:  # this call finished it: measured once per job
        metrics.bulk_job_finished(
            channel=job.channel,
            started_at=job.started_at or job.confirmed_at,
            completed_at=job.completed_at,
            sent=counts["sent"],
            failed=counts["failed"],
        )
    return job.status


# --- one recipient --------------------------------------------------------------------------------


def _record(recipient_id, outcome: sending.Outcome) -> bool:
    """SENDING → the outcome. Conditional, so a settled recipient is never overwritten."""
    now = timezone.now()
    changed = BulkRecipient.objects.filter(pk=recipient_id, status=RecipientStatus.SENDING).update(
        status=outcome.status,
        error_code=outcome.code[:64],
        error_details=outcome.details[:10000],
        sent_at=now if outcome.status == RecipientStatus.SENT else None,
        updated_at=now,
    )
    return changed == 1


def settle_stale_claim(recipient: BulkRecipient, *, may_deliver: bool = True) -> str:
    """A recipient left SENDING by a worker that died: take its Message's outcome, or mark it unknown.

    ``may_deliver=False`` (the job was cancelled meanwhile): a message that never reached the
    provider is not delivered now; the recipient is CANCELLED.
    """
    if recipient.message_id is None:
        # Claimed, never handed to the provider (its message is created, held, right before the call).
        status = RecipientStatus.PENDING if may_deliver else RecipientStatus.CANCELLED
        now = timezone.now()
        BulkRecipient.objects.filter(pk=recipient.pk, status=RecipientStatus.SENDING, message__isnull=True).update(
            status=status, updated_at=now
        )
        return status
    outcome = sending.reconcile(recipient.message, may_deliver=may_deliver)
    if outcome is None:
        outcome = sending.Outcome(RecipientStatus.FAILED, OUTCOME_UNKNOWN, UNKNOWN_OUTCOME_DETAILS)
        logger.warning("bulk: recipient %s of job %s has an unknown outcome", recipient.pk, recipient.job_id)
    _record(recipient.pk, outcome)
    return outcome.status


# --- one chunk ------------------------------------------------------------------------------------


def _take_lease(chunk_id, owner: str) -> bool:
    now = timezone.now()
    return (
        BulkJobChunk.objects.filter(
            pk=chunk_id, status__in=[ChunkStatus.PENDING, ChunkStatus.QUEUED, ChunkStatus.RUNNING]
        )
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=owner))
        .update(
            status=ChunkStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=_lease_seconds()),
            started_at=now,
        )
        == 1
    )


def _renew_lease(chunk_id, owner: str) -> bool:
    expires = timezone.now() + timedelta(seconds=_lease_seconds())
    return BulkJobChunk.objects.filter(pk=chunk_id, lease_owner=owner).update(lease_expires_at=expires) == 1


def _release_lease(chunk_id, owner: str, status: str, error: str = "") -> None:
    now = timezone.now()
    fields = {"status": status, "lease_owner": "", "lease_expires_at": None}
    if status in (ChunkStatus.DONE, ChunkStatus.DEAD_LETTERED):
        fields["finished_at"] = now
    if error:
        fields["last_error"] = error[:10000]
    BulkJobChunk.objects.filter(pk=chunk_id, lease_owner=owner).update(**fields)


class _Heartbeat(threading.Thread):
    """Renews the chunk's lease and refreshes the job's counters while the chunk runs."""

    def __init__(self, chunk: BulkJobChunk, owner: str, stop: threading.Event):
        super().__init__(name=f"bulk-heartbeat-{chunk.pk}", daemon=True)
        self.chunk, self.owner, self.stop = chunk, owner, stop
        self.done = threading.Event()
        self.lost_lease = False

    def run(self) -> None:
        interval = max(0.2, min(1.0, _lease_seconds() / 3))
        try:
            while not self.done.wait(interval):
                if not _renew_lease(self.chunk.pk, self.owner):
                    logger.warning("bulk: lost the lease on chunk %s; stopping", self.chunk.pk)
                    self.lost_lease = True
                    self.stop.set()
                    return
                job_refresh_counters(self.chunk.job_id)
        except Exception:  # a heartbeat failure stops the chunk; its lease then expires for another worker
            logger.exception("bulk: heartbeat of chunk %s failed", self.chunk.pk)
            self.stop.set()
        finally:
            connection.close()


def chunk_process(chunk_id, *, owner: str | None = None) -> ChunkResult:
    """Process one chunk (the Celery task and the DLQ replay both call this). Safe to call twice."""
    owner = owner or new_owner()
    close_old_connections()
    chunk = BulkJobChunk.objects.select_related("job", "job__created_by").get(pk=chunk_id)
    job = chunk.job
    logs.log_bind(bulk_job_id=job.pk, chunk_id=chunk_id)
    if chunk.status == ChunkStatus.DONE:
        return ChunkResult(str(chunk_id), "already-done")
    if chunk.status == ChunkStatus.DEAD_LETTERED:
        return ChunkResult(str(chunk_id), "dead-lettered")
    if job.status not in RUNNABLE_JOB_STATUSES:
        # Paused: resume enqueues the chunk again. Cancelled or finished: nothing left to send.
        return ChunkResult(str(chunk_id), "not-runnable")
    if not _take_lease(chunk_id, owner):
        chunk.refresh_from_db()
        if chunk.status in (ChunkStatus.DONE, ChunkStatus.DEAD_LETTERED):
            return ChunkResult(str(chunk_id), "already-done")
        remaining = (chunk.lease_expires_at - timezone.now()).total_seconds() if chunk.lease_expires_at else 1
        raise LeaseHeld(chunk_id, remaining + 1)

    BulkJobChunk.objects.filter(pk=chunk_id).update(attempts=chunk.attempts + 1)
    now = timezone.now()
    BulkJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(status=JobStatus.IN_PROGRESS, updated_at=now)
    BulkJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)

    stop = threading.Event()
    heartbeat = _Heartbeat(chunk, owner, stop)
    heartbeat.start()
    try:
        # We hold the lease: anything SENDING here was claimed by a worker that is gone.
        for stale in _chunk_recipients(chunk).filter(status=RecipientStatus.SENDING).select_related("message"):
            settle_stale_claim(stale)
        by_status, error = ChunkRun(job, chunk, stop, lease_lost=lambda: heartbeat.lost_lease).run()
    finally:
        heartbeat.done.set()
        heartbeat.join()

    if error is not None:
        _release_lease(chunk_id, owner, ChunkStatus.QUEUED, f"{type(error).__name__}: {error}")
        raise error
    if heartbeat.lost_lease:
        return ChunkResult(str(chunk_id), "lease-lost", sum(by_status.values()), by_status)

    open_left = _chunk_recipients(chunk).filter(status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING]).exists()
    if open_left:
        # Paused (or cancelled) mid-chunk: resume enqueues it again and it continues from here.
        _release_lease(chunk_id, owner, ChunkStatus.PENDING)
        outcome = "paused"
    else:
        _release_lease(chunk_id, owner, ChunkStatus.DONE)
        outcome = "done"
    job_refresh_counters(job.pk)
    job_maybe_finish(job.pk)
    logger.info("bulk: chunk %s of job %s %s: %s", chunk.sequence, job.pk, outcome, by_status)
    return ChunkResult(str(chunk_id), outcome, sum(by_status.values()), by_status)


def chunk_dead_letter(chunk_id, error: str) -> None:
    """A chunk failed after its retries: its unsent recipients fail (CHUNK_DEAD_LETTERED), the job can finish.

    The DLQ replay (bulk.services.handle_bulk_dlq_payload) puts those recipients back to PENDING
    and runs the chunk again.
    """
    chunk = BulkJobChunk.objects.get(pk=chunk_id)
    with transaction.atomic():
        BulkJobChunk.objects.filter(pk=chunk_id).update(
            status=ChunkStatus.DEAD_LETTERED,
            lease_owner="",
            lease_expires_at=None,
            finished_at=timezone.now(),
            last_error=error[:10000],
        )
        now = timezone.now()
        _chunk_recipients(chunk).filter(status=RecipientStatus.PENDING).update(
            status=RecipientStatus.FAILED,
            error_code=CHUNK_DEAD_LETTERED,
            error_details=f"Not sent: the chunk failed after its retries ({error[:500]}). Replay it from bulk-dlq.",
            updated_at=now,
        )
    for stale in _chunk_recipients(chunk).filter(status=RecipientStatus.SENDING).select_related("message"):
        settle_stale_claim(stale)
    job_refresh_counters(chunk.job_id)
    alerts.alert_raise(
        "bulk-chunk-dead-lettered",
        subject="A bulk chunk was dead-lettered",
        detail=f"Chunk {chunk_id} of bulk job {chunk.job_id} failed after its retries, now on bulk-dlq: {error[:500]}",
    )
    job_maybe_finish(chunk.job_id)


def chunks_enqueue(job_id, *, statuses=(ChunkStatus.PENDING, ChunkStatus.QUEUED)) -> int:
    """Send a Celery message for each chunk of the job in ``statuses``; returns how many."""
    from bulk.tasks import bulk_chunk_process  # tasks import this module

    ids = list(
        BulkJobChunk.objects.filter(job_id=job_id, status__in=statuses)
        .order_by("sequence")
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    BulkJobChunk.objects.filter(pk__in=ids, status=ChunkStatus.PENDING).update(status=ChunkStatus.QUEUED)
    BulkJobChunk.objects.filter(pk__in=ids).update(queued_at=now)
    for chunk_id in ids:
        bulk_chunk_process.delay(str(chunk_id))
    return len(ids)


def sweep(*, now=None) -> dict[str, int]:
    """Repair what crashes leave behind (the beat task runs this every minute). Idempotent.

    - chunks RUNNING with an expired lease (their worker died and no redelivery took over), and
      chunks of running jobs queued longer ago than BULK_STALE_CHUNK_SECONDS: enqueued again;
    - running jobs with no open recipient, and finished jobs without a report: finished;
    - cancelled jobs with recipients left SENDING by a dead worker: settled.
    """
    now = now or timezone.now()
    result = {"requeued": 0, "finished": 0, "settled": 0}
    stale_before = now - timedelta(seconds=settings.BULK_STALE_CHUNK_SECONDS)
    runnable_chunks = BulkJobChunk.objects.filter(job__status__in=RUNNABLE_JOB_STATUSES)
    stale = runnable_chunks.filter(
        Q(status=ChunkStatus.RUNNING, lease_expires_at__lt=now)
        | Q(status__in=[ChunkStatus.PENDING, ChunkStatus.QUEUED], queued_at__lt=stale_before)
        | Q(status=ChunkStatus.PENDING, queued_at__isnull=True, job__confirmed_at__lt=stale_before)
    )
    from bulk.tasks import bulk_chunk_process

    for chunk_id in stale.values_list("pk", flat=True):
        BulkJobChunk.objects.filter(pk=chunk_id).update(queued_at=now)
        bulk_chunk_process.delay(str(chunk_id))
        result["requeued"] += 1

    for recipient in BulkRecipient.objects.filter(
        job__status=JobStatus.CANCELLED, status=RecipientStatus.SENDING
    ).select_related("message"):
        chunk = BulkJobChunk.objects.filter(
            job_id=recipient.job_id, start_sequence__lte=recipient.sequence, end_sequence__gt=recipient.sequence
        ).first()
        if chunk is None or chunk.lease_expires_at is None or chunk.lease_expires_at < now:
            settle_stale_claim(recipient, may_deliver=False)
            result["settled"] += 1

    candidates = BulkJob.objects.filter(
        Q(status__in=RUNNABLE_JOB_STATUSES, updated_at__lt=now - timedelta(seconds=30))
        | Q(status__in=[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED], report_s3_key="")
    )
    for job_id in candidates.values_list("pk", flat=True):
        if job_maybe_finish(job_id):
            result["finished"] += 1
    return result
