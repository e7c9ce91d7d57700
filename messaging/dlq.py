"""Dead-letter queues and their replay — one mechanism for inbound-dlq, outbound-dlq and bulk-dlq.

A payload whose processing failed after its retries is sent to its DLQ (SQS) with `dlq_send`,
and a `DLQMessage` row shows its state. `dlq_replay` takes up to 100 messages from a DLQ, runs
each through the same handler as the original, and:
- success: deletes it from the DLQ, row REPLAYED;
- failure: increments the retry counter and returns it to the DLQ;
- past MAX_REPLAY_ATTEMPTS: never replayed again; the row keeps the payload, PARKED, for a human.
Copies of one original message (SQS delivers at least once) are replayed once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from messaging.models import DLQMessage
from wecare import aws

logger = logging.getLogger(__name__)

MAX_REPLAY_ATTEMPTS = 5
MAX_REPLAY_BATCH = 100


def handler_paths() -> dict[str, str]:
    """DLQ name → dotted path of the handler that processes one payload (raises on failure)."""
    return {
        settings.QUEUE_INBOUND_DLQ: "messaging.inbound.handle_dlq_payload",
        settings.QUEUE_OUTBOUND_DLQ: "messaging.services.handle_outbound_dlq_payload",
        settings.QUEUE_BULK_DLQ: "bulk.services.handle_bulk_dlq_payload",
    }


def dlq_names() -> list[str]:
    return list(handler_paths())


def _queue_url(queue: str) -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    return aws.client("sqs").get_queue_url(QueueName=prefix + queue)["QueueUrl"]


def _check_queue(queue: str) -> None:
    if queue not in handler_paths():
        raise ValueError(f"Unknown dead-letter queue {queue!r}: use one of {', '.join(dlq_names())}.")


def dlq_send(*, queue: str, original_message_id: str, payload: dict, error: str) -> DLQMessage:
    """Park a failed payload on its DLQ and record it. Idempotent per (queue, original id)."""
    _check_queue(queue)
    with transaction.atomic():
        row, created = DLQMessage.objects.select_for_update().get_or_create(
            queue_name=queue,
            original_message_id=str(original_message_id),
            defaults={"payload": payload, "last_error": error[:10000]},
        )
        if not created:
            if row.status == DLQMessage.Status.PARKED:
                return row
            row.payload = payload
            row.last_error = error[:10000]
            row.status = DLQMessage.Status.PENDING
            row.save(update_fields=["payload", "last_error", "status"])
    body = {"originalMessageId": str(original_message_id), "payload": payload, "error": error[:10000]}
    aws.client("sqs").send_message(QueueUrl=_queue_url(queue), MessageBody=json.dumps(body))
    logger.error("dead-lettered queue=%s original=%s error=%s", queue, original_message_id, error[:500])
    return row


@dataclass
class ReplayResult:
    queue: str
    received: int = 0
    replayed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    duplicates: int = 0

    def as_dict(self) -> dict:
        return {
            "queue": self.queue,
            "received": self.received,
            "replayed": self.replayed,
            "failed": self.failed,
            "parked": self.parked,
            "duplicates": self.duplicates,
        }


def _receive(queue_url: str, limit: int) -> list[dict]:
    sqs = aws.client("sqs")
    messages: list[dict] = []
    while len(messages) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            WaitTimeSeconds=0,
            VisibilityTimeout=120,
        ).get("Messages", [])
        if not batch:
            break
        messages.extend(batch)
    return messages


def dlq_replay(queue: str, *, limit: int = MAX_REPLAY_BATCH) -> ReplayResult:
    """Replay up to ``limit`` (at most 100) messages of one DLQ through their original handler."""
    _check_queue(queue)
    limit = max(1, min(limit, MAX_REPLAY_BATCH))
    handler = import_string(handler_paths()[queue])
    queue_url = _queue_url(queue)
    sqs = aws.client("sqs")
    result = ReplayResult(queue=queue)
    seen: set[str] = set()

    for sqs_message in _receive(queue_url, limit):
        result.received += 1
        receipt = sqs_message["ReceiptHandle"]
        try:
            body = json.loads(sqs_message["Body"])
            original_id = str(body["originalMessageId"])
            payload = body["payload"]
        except (ValueError, KeyError, TypeError):
            # Not ours to replay, but never lose it: keep a parked row with the raw body.
            original_id = sqs_message["MessageId"]
            DLQMessage.objects.get_or_create(
                queue_name=queue,
                original_message_id=original_id,
                defaults={
                    "payload": {"raw": sqs_message["Body"]},
                    "status": DLQMessage.Status.PARKED,
                    "last_error": "unreadable DLQ message body",
                },
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            result.parked.append(original_id)
            continue

        if original_id in seen:
            result.duplicates += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue
        seen.add(original_id)

        row, _ = DLQMessage.objects.get_or_create(
            queue_name=queue,
            original_message_id=original_id,
            defaults={"payload": payload, "last_error": body.get("error", "")},
        )
        if row.status in (DLQMessage.Status.REPLAYED, DLQMessage.Status.PARKED):
            # Already handled (a duplicate copy) or parked for a human: the row keeps the payload.
            result.duplicates += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue

        now = timezone.now()
        try:
            handler(row.payload)
        except Exception as exc:  # the handler's own failure: count it, keep the payload
            row.retry_count += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:10000]
            row.last_attempt_at = now
            if row.retry_count >= MAX_REPLAY_ATTEMPTS:
                row.status = DLQMessage.Status.PARKED
                result.parked.append(original_id)
                logger.error("DLQ %s: %s parked after %s attempts: %s", queue, original_id, row.retry_count, exc)
            else:
                result.failed.append(original_id)
                body["retryCount"] = row.retry_count
                body["error"] = row.last_error
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
                logger.warning("DLQ %s: replay of %s failed (%s): %s", queue, original_id, row.retry_count, exc)
            row.save(update_fields=["retry_count", "last_error", "last_attempt_at", "status"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue

        row.status = DLQMessage.Status.REPLAYED
        row.last_attempt_at = now
        row.save(update_fields=["status", "last_attempt_at"])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        result.replayed.append(original_id)
    return result
