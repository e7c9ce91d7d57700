"""Inbound event processing tasks (see messaging.inbound). Routed to the inbound queue by name.

One task per stored SNS notification: it loads the InboundEvent and calls the service. Retries
live here:
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

__all__ = ["inbound_event_process_task"]

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
