"""Inbound event processing tasks (see messaging.inbound). Routed to the inbound queue by name.

The relay (messaging.inbound.outbox) puts ``inbound_events_process_task`` messages on the queue,
each naming up to INBOUND_EVENTS_PER_TASK stored events: statuses are applied together, and an
event carrying customer messages is processed right there, one by one. An event that fails is
handed to ``inbound_event_process_task`` (one event), whose retries are:
- another worker is processing a copy of the same message (ClaimBusy): try again shortly, until
  that worker finishes or its claim's lease runs out (then this copy takes over);
- a malformed notification (InboundPayloadError): no retry will help, dead-letter it now;
- anything else (database, DynamoDB, S3, WhatsApp unavailable): retry with backoff, and after
  INBOUND_TASK_MAX_RETRIES dead-letter it to inbound-dlq, where the replay picks it up.
"""

from __future__ import annotations

import logging
import math

from celery import shared_task
from django.conf import settings

from messaging import inbound
from messaging.claims import ClaimBusy
from messaging.models import InboundEvent
from wecare.retry import backoff_seconds

__all__ = ["inbound_event_process_task", "inbound_events_process_task", "inbound_outbox_relay_task"]

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 900  # SQS delays cap at 15 minutes


def _max_busy_retries() -> int:
    # Enough waits to outlast a dead worker's lease, plus a margin.
    return math.ceil(settings.INBOUND_CLAIM_LEASE_SECONDS / settings.INBOUND_RETRY_DELAY_SECONDS) + 5


@shared_task(bind=True, acks_late=True, max_retries=None, name="messaging.tasks.inbound.inbound_event_process_task")
def inbound_event_process_task(self, event_id: str, failures: int = 0, busy: int = 0) -> None:
    try:
        inbound.inbound_event_process(event_id=event_id)
    except InboundEvent.DoesNotExist:
        logger.error("inbound event %s does not exist: nothing to process", event_id)
    except ClaimBusy as exc:
        if busy >= _max_busy_retries():
            inbound.inbound_event_fail(event_id=event_id, error=f"ClaimBusy: {exc}")
            return
        raise self.retry(
            args=(),
            kwargs={"event_id": event_id, "failures": failures, "busy": busy + 1},
            countdown=settings.INBOUND_RETRY_DELAY_SECONDS,
        ) from None
    except inbound.InboundPayloadError as exc:
        logger.error("inbound event %s cannot be processed: %s", event_id, exc)
        inbound.inbound_event_fail(event_id=event_id, error=f"InboundPayloadError: {exc}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if failures >= settings.INBOUND_TASK_MAX_RETRIES:
            logger.error("inbound event %s failed %s times, dead-lettering: %s", event_id, failures + 1, error)
            inbound.inbound_event_fail(event_id=event_id, error=error)
            return
        delay = backoff_seconds(failures + 1, base=settings.INBOUND_RETRY_DELAY_SECONDS, cap=MAX_RETRY_DELAY_SECONDS)
        logger.warning("inbound event %s failed (%s), retry in %.1fs: %s", event_id, failures + 1, delay, error)
        raise self.retry(
            args=(), kwargs={"event_id": event_id, "failures": failures + 1, "busy": busy}, countdown=delay, exc=exc
        ) from None


def _delay(failures: int) -> int:
    return min(settings.INBOUND_RETRY_DELAY_SECONDS * 2**failures, MAX_RETRY_DELAY_SECONDS)


def _process_one_now(event_id: str) -> None:
    """The per-event path, run inside the batch task; a failure continues as the per-event task."""
    try:
        inbound.inbound_event_process(event_id=event_id)
    except InboundEvent.DoesNotExist:
        logger.error("inbound event %s does not exist: nothing to process", event_id)
    except ClaimBusy:
        inbound_event_process_task.apply_async(
            kwargs={"event_id": event_id, "failures": 0, "busy": 1}, countdown=settings.INBOUND_RETRY_DELAY_SECONDS
        )
    except inbound.InboundPayloadError as exc:
        logger.error("inbound event %s cannot be processed: %s", event_id, exc)
        inbound.inbound_event_fail(event_id=event_id, error=f"InboundPayloadError: {exc}")
    except Exception as exc:
        if settings.INBOUND_TASK_MAX_RETRIES < 1:
            inbound.inbound_event_fail(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
            return
        logger.warning("inbound event %s failed (1), retry in %ss: %s", event_id, _delay(0), type(exc).__name__)
        inbound_event_process_task.apply_async(kwargs={"event_id": event_id, "failures": 1}, countdown=_delay(0))


@shared_task(bind=True, acks_late=True, max_retries=None, name="messaging.tasks.inbound.inbound_events_process_task")
def inbound_events_process_task(self, event_ids: list[str], failures: int = 0) -> None:
    try:
        summary = inbound.inbound_events_process(event_ids=event_ids)
    except Exception as exc:
        if failures >= settings.INBOUND_TASK_MAX_RETRIES:
            # Give each event its own retries and, in the end, its own place in the DLQ.
            logger.error("inbound batch of %s failed %s times: each event goes on alone", len(event_ids), failures + 1)
            for event_id in event_ids:
                inbound_event_process_task.apply_async(kwargs={"event_id": event_id, "failures": failures})
            return
        logger.warning("inbound batch of %s failed, retry in %ss: %s", len(event_ids), _delay(failures), exc)
        raise self.retry(
            args=(), kwargs={"event_ids": event_ids, "failures": failures + 1}, countdown=_delay(failures), exc=exc
        ) from None
    for event_id in summary.one_by_one:
        _process_one_now(event_id)


@shared_task(name="messaging.tasks.inbound.inbound_outbox_relay_task")
def inbound_outbox_relay_task() -> int:
    """The safety net on beat: relay whatever the relay loop left (or everything, without a loop)."""
    from messaging.inbound.outbox import inbound_outbox_relay  # the outbox imports this module

    return inbound_outbox_relay(max_seconds=20)
