"""Celery tasks of bulk jobs (routed to bulk-queue by ``bulk.tasks.*``). Each takes an id and calls bulk.execution."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from bulk import execution, quiet_hours, scheduling
from bulk.worker import heap_freeze_once
from messaging.dlq import dlq_send
from wecare.retry import backoff_seconds

logger = logging.getLogger(__name__)

# SQS cannot delay a message longer than 15 minutes.
MAX_COUNTDOWN = 900


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def bulk_chunk_process(self, chunk_id: str, failures: int = 0) -> str:
    """Send one chunk. A live lease elsewhere: try again when it expires. A failure: retry with
    backoff, and after BULK_CHUNK_MAX_RETRIES put the chunk on bulk-dlq."""
    try:
        outcome = execution.chunk_process(chunk_id).outcome
        heap_freeze_once()
        return outcome
    except execution.LeaseHeld as exc:
        raise self.retry(args=[chunk_id, failures], countdown=min(exc.retry_after, MAX_COUNTDOWN), exc=exc)
    except Exception as exc:
        failures += 1
        error = f"{type(exc).__name__}: {exc}"
        if failures > settings.BULK_CHUNK_MAX_RETRIES:
            logger.error("bulk: chunk %s failed %s times, dead-lettering: %s", chunk_id, failures, error)
            execution.chunk_dead_letter(chunk_id, error)
            dlq_send(
                queue=settings.QUEUE_BULK_DLQ,
                original_message_id=f"bulk-chunk-{chunk_id}",
                payload={"chunkId": str(chunk_id)},
                error=error,
            )
            return "dead-lettered"
        countdown = backoff_seconds(failures + 1, base=5.0, cap=MAX_COUNTDOWN)
        logger.warning("bulk: chunk %s failed (%s), retry %s in %.0fs", chunk_id, error, failures, countdown)
        raise self.retry(args=[chunk_id, failures], countdown=countdown, exc=exc)


@shared_task(acks_late=True)
def bulk_sweep() -> dict[str, int]:
    """Repair what crashed workers leave behind (scheduled every minute in CELERY_BEAT_SCHEDULE)."""
    return execution.sweep()


@shared_task(acks_late=True)
def bulk_job_enqueue_chunks(job_id: str, statuses: list[str] | None = None) -> int:
    """Queue a confirmed or resumed job's chunks on bulk-queue. A worker does it, not the request, so
    confirming a 100,000-recipient job (1,000 chunks) answers at once. Safe to run twice (a chunk's
    lease makes a second copy of its message harmless); a lost run is repaired by the sweeper."""
    if statuses:
        return execution.chunks_enqueue(job_id, statuses=tuple(statuses))
    return execution.chunks_enqueue(job_id)


@shared_task(acks_late=True)
def bulk_scheduler_tick() -> dict[str, int]:
    """Start scheduled jobs whose time has come and queue again the chunks whose recipients' quiet hours
    ended (beat, every BULK_SCHEDULER_SECONDS). Both read the database, so a restart loses nothing."""
    started = scheduling.scheduled_jobs_start_due()
    resumed = quiet_hours.chunks_resume_due()
    if started or resumed:
        logger.info("bulk scheduler: %s job(s) started, %s chunk(s) resumed after quiet hours", len(started), resumed)
    return {"started": len(started), "resumed": resumed}
