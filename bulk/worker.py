"""Bulk worker processes: the start-up check of their concurrency (2..5), and their heap frozen after
the first chunk."""

from __future__ import annotations

import gc
import logging
import os

from celery.signals import celeryd_after_setup
from django.conf import settings

logger = logging.getLogger(__name__)

MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 5


def bulk_queue_name() -> str:
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "") + settings.QUEUE_BULK


@celeryd_after_setup.connect
def refuse_bad_bulk_concurrency(sender=None, instance=None, **kwargs) -> None:
    """A worker that consumes bulk-queue with a concurrency outside 2..5 refuses to start.

    Every bulk chunk runs BULK_SEND_THREADS sends at once; more worker processes than that would
    only contend for the same rate limits and database connections.
    """
    queues = set(instance.app.amqp.queues.consume_from or instance.app.amqp.queues)
    concurrency = instance.concurrency
    # Celery knows the queues by their names in settings; kombu adds queue_name_prefix only towards SQS.
    if settings.QUEUE_BULK in queues and not (MIN_CONCURRENCY <= concurrency <= MAX_CONCURRENCY):
        message = (
            f"A worker consuming {bulk_queue_name()} needs a concurrency between {MIN_CONCURRENCY} and "
            f"{MAX_CONCURRENCY} (got {concurrency}): start it with -c $BULK_WORKER_CONCURRENCY."
        )
        logger.critical(message)
        raise SystemExit(message)


_frozen_in_pid = 0


def heap_freeze_once() -> None:
    """After a pool process's first chunk, move everything it has loaded so far (Django, the models, boto
    clients and their endpoint data) out of the garbage collector's way with gc.freeze(): later
    collections then scan a chunk's own objects only, not the whole heap (CPU per message). Once per
    process: a forked child starts afresh."""
    global _frozen_in_pid
    if _frozen_in_pid != os.getpid():
        gc.freeze()
        _frozen_in_pid = os.getpid()
