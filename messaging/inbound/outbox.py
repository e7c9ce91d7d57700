"""The inbound outbox: stored events reach the workers in batches, and none is lost to a broker outage.

The webhook only writes the InboundEvent row (one INSERT … ON CONFLICT, no broker round trip).
Every row that is pending and not yet handed to the broker (``relayed_at`` null) is the outbox.
The relay (``inbound_outbox_relay``: the ``relay_inbound_events`` loop and, as a safety net, a beat
task) takes rows in order, groups their ids INBOUND_EVENTS_PER_TASK to a Celery task message, and
puts the round's messages (ten at most, so bigger ones when many events wait) on the inbound queue
with one SQS SendMessageBatch; it marks the rows
relayed in the same transaction. If the broker is unreachable the send raises, the transaction rolls
back and the rows stay in the outbox until the broker returns. A row handed over but still pending
after INBOUND_RELAY_STALE_SECONDS (the message was lost, a worker died) is relayed again: processing
is idempotent (the DynamoDB claim and the unique wamid keep storage exactly-once).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import InboundEvent

logger = logging.getLogger(__name__)

SQS_BATCH = 10  # SendMessageBatch takes at most ten entries…
SQS_BATCH_BYTES = 250 * 1024  # …of at most 256 KiB together


def _outbox(now):
    stale = now - timedelta(seconds=settings.INBOUND_RELAY_STALE_SECONDS)
    return InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).filter(
        Q(relayed_at__isnull=True) | Q(relayed_at__lt=stale)
    )


@contextlib.contextmanager
def _batched_publishing(producer) -> Iterator[list]:
    """Collect what Celery would put on SQS, one message at a time, instead of sending it.

    Celery and kombu still build every message (routing, queue prefix, encoding); only kombu's
    final SendMessage is replaced, so the caller can send the messages with SendMessageBatch.
    """
    channel = producer.channel
    captured: list[tuple[str, dict]] = []
    original = channel._put
    channel._put = lambda queue, message, **kwargs: captured.append((queue, message))
    try:
        yield captured
    finally:
        channel._put = original


def _send_batch(producer, captured: list[tuple[str, dict]]) -> int:
    """Send captured messages with SendMessageBatch (ten per call); raises on any failure."""
    channel = producer.channel
    if not hasattr(channel, "sqs"):  # not SQS (kombu's memory transport in a benchmark run)
        for queue, message in captured:
            channel._put(queue, message)
        return len(captured)
    from kombu.asynchronous.aws.sqs.message import AsyncMessage
    from kombu.utils.json import dumps

    sent = 0
    by_queue: dict[str, list[dict]] = {}
    for queue, message in captured:
        by_queue.setdefault(queue, []).append(message)
    for queue, messages in by_queue.items():
        url = channel._new_queue(queue)
        client = channel.sqs(queue=channel.canonical_queue_name(queue))
        bodies = []
        for message in messages:
            body = dumps(message)
            bodies.append(AsyncMessage().encode(body) if channel.sqs_base64_encoding else body)
        batches: list[list[str]] = [[]]
        for body in bodies:
            batch = batches[-1]
            if batch and (len(batch) == SQS_BATCH or sum(map(len, batch)) + len(body) > SQS_BATCH_BYTES):
                batches.append(batch := [])
            batch.append(body)
        for batch in filter(None, batches):
            entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(batch)]
            response = client.send_message_batch(QueueUrl=url, Entries=entries)
            if response.get("Failed"):
                # The whole relay transaction rolls back: every row of it is relayed again later
                # (a message that did go out is then processed twice, which is idempotent).
                raise RuntimeError(
                    f"SendMessageBatch refused {len(response['Failed'])} message(s): {response['Failed'][0]}"
                )
            sent += len(entries)
    return sent


def inbound_outbox_relay(*, max_events: int | None = None, max_seconds: float = 5.0) -> int:
    """Hand outbox rows to the broker in batches; returns how many. Raises if the broker is down
    (the rows stay in the outbox)."""
    from messaging.tasks.inbound import inbound_events_process_task  # the task module imports this one
    from wecare.celery import app

    relayed = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and (max_events is None or relayed < max_events):
        with transaction.atomic():
            now = timezone.now()
            ids = list(
                _outbox(now)
                .order_by("received_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[: settings.INBOUND_RELAY_MAX_PER_ROUND]
            )
            if not ids:
                break
            # At least INBOUND_EVENTS_PER_TASK events a message, more when many wait: every round is
            # one SendMessageBatch, and a worker's cost is per message (a receive and a delete).
            per_task = max(settings.INBOUND_EVENTS_PER_TASK, -(-len(ids) // SQS_BATCH))
            groups = [[str(pk) for pk in ids[i : i + per_task]] for i in range(0, len(ids), per_task)]
            with app.producer_or_acquire() as producer:
                with _batched_publishing(producer) as captured:
                    for group in groups:
                        inbound_events_process_task.apply_async(args=[group], producer=producer, retry=False)
                _send_batch(producer, captured)
            InboundEvent.objects.filter(pk__in=ids).update(relayed_at=now)
        relayed += len(ids)
        if len(ids) < settings.INBOUND_RELAY_MAX_PER_ROUND:
            # Caught up: what arrived meanwhile waits for the next call, so it goes out in a few full
            # messages rather than a trickle of tiny ones (a worker pays per message).
            break
    if relayed:
        logger.info("inbound outbox: %s event(s) relayed", relayed)
    return relayed


def inbound_outbox_size() -> int:
    return _outbox(timezone.now()).count()
