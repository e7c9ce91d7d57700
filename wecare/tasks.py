"""Celery tasks of the platform itself. Their schedule is CELERY_BEAT_SCHEDULE in settings."""

from __future__ import annotations

from celery import shared_task

from wecare import maintenance


@shared_task(name="wecare.purge_expired")
def purge_expired() -> dict[str, int]:
    """Delete expired audit entries, messages with their media, and DLQ records (idempotent)."""
    return maintenance.purge_expired().as_dict()


@shared_task(name="wecare.observe_queues")
def observe_queues() -> dict[str, int | None]:
    """Every minute (beat): QueueDepth and QueueOldestAge per queue, TierUsePercent per number."""
    from wecare import operations  # reads messaging and bulk models: imported when the task runs

    return {info.name: info.waiting for info in operations.queues_observe()}
