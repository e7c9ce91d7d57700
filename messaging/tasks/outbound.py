"""Outbound send tasks (see messaging.services). Routed to the outbound queue (QUEUE_OUTBOUND).

``deliver_message(message_id)`` loads nothing itself: it calls message_deliver, and re-schedules
itself with the countdown the service asks for (rate limit, transient provider error). The retry
count that matters is the message's ``attempts`` (bounded by OUTBOUND_MAX_RETRIES inside the
service), so rate-limit waits, which never count, can re-queue as often as needed. Anything else
that goes wrong (a bug, the database) marks the message failed and dead-letters it (on_failure).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from messaging.services import DeliveryDeferred, message_deliver, message_fail_unexpected

logger = logging.getLogger(__name__)

__all__ = ["deliver_message"]


class DeliverTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        message_id = args[0] if args else kwargs.get("message_id")
        logger.error("deliver_message %s crashed: %r", message_id, exc)
        if message_id:
            message_fail_unexpected(message_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    base=DeliverTask,
    name="messaging.tasks.outbound.deliver_message",
    max_retries=None,  # bounded by the message's attempts, see the module docstring
    acks_late=True,
)
def deliver_message(self, message_id: str) -> str:
    try:
        message = message_deliver(message_id)
    except DeliveryDeferred as deferred:
        raise self.retry(countdown=deferred.countdown, exc=deferred)
    return message.status
