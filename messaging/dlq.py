"""Dead-letter queues and their replay — one mechanism for inbound-dlq, outbound-dlq and bulk-dlq.

A payload whose processing failed after its retries is sent to its DLQ (SQS) with `dlq_send`,
and a `DLQMessage` row shows its state. `dlq_replay` takes up to 100 messages from a DLQ, runs
each through the same handler as the original, and:
- success: deletes it from the DLQ, row REPLAYED;
- failure: increments the retry counter and returns it to the DLQ;
- past MAX_REPLAY_ATTEMPTS: never replayed again; the row keeps the payload, PARKED, for a human.
Copies of one original message (SQS delivers at least once) are replayed once.

Nothing on a DLQ is trusted that the platform did not sign: `dlq_send` adds an HMAC (keyed by the
Django secret key) over the queue, the original message id and the payload, and the replay parks,
without running it, any message whose signature is missing or wrong. Someone able to write to the
queue can therefore not have a made-up inbound event (or send) processed.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from messaging.models import DLQMessage
from wecare import alerts, aws

logger = logging.getLogger(__name__)

MAX_REPLAY_ATTEMPTS = 5
SIGNATURE_SALT = "wecare.messaging.dlq"
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


def dlq_signature(*, queue: str, original_message_id: str, payload: Any) -> str:
    """The platform's HMAC-SHA256 of one dead letter (what a replay checks before running it)."""
    canonical = json.dumps([queue, str(original_message_id), payload], sort_keys=True, separators=(",", ":"))
    return salted_hmac(SIGNATURE_SALT, canonical, algorithm="sha256").hexdigest()


def dlq_signature_valid(*, queue: str, body: dict) -> bool:
    given = body.get("signature")
    if not isinstance(given, str) or not given:
        return False
    expected = dlq_signature(queue=queue, original_message_id=body["originalMessageId"], payload=body["payload"])
    return hmac.compare_digest(given, expected)


def _check_queue(queue: str) -> None:
    if queue not in handler_paths():
        raise ValueError(f"Unknown dead-letter queue {queue!r}: use one of {', '.join(dlq_names())}.")


def dlq_send(*, queue: str, original_message_id: str, payload: dict, error: str) -> DLQMessage:
    """Park a failed payload on its DLQ and record it. Idempotent per (queue, original id).

    The row is written (committed) before the SQS message is sent, so a failed send still leaves
    the payload visible. A payload that fails again after a successful replay starts a new round
    of replays; one already parked stays parked (the row keeps the payload for a human).
    """
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
            if row.status == DLQMessage.Status.REPLAYED:
                row.retry_count = 0
            row.payload = payload
            row.last_error = error[:10000]
            row.status = DLQMessage.Status.PENDING
            row.save(update_fields=["payload", "last_error", "status", "retry_count"])
    body = {
        "originalMessageId": str(original_message_id),
        "payload": payload,
        "error": error[:10000],
        "retryCount": row.retry_count,
        "signature": dlq_signature(queue=queue, original_message_id=str(original_message_id), payload=payload),
    }
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
    busy: int = 0  # copies another replay is running right now: kept in the DLQ

    def as_dict(self) -> dict:
        return {
            "queue": self.queue,
            "received": self.received,
            "replayed": self.replayed,
            "failed": self.failed,
            "parked": self.parked,
            "duplicates": self.duplicates,
            "busy": self.busy,
        }


# Long enough for a whole batch of handlers to run before SQS shows a received message again.
REPLAY_VISIBILITY_SECONDS = 900
# A copy kept back because another replay runs it reappears this long after that replay's lease.
LEASE_MARGIN_SECONDS = 5


def _receive(queue_url: str, limit: int) -> list[dict]:
    """Up to ``limit`` messages, all received before any is handled, so a copy returned to the DLQ
    during this replay is not picked up again by it."""
    sqs = aws.client("sqs")
    messages: list[dict] = []
    while len(messages) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            WaitTimeSeconds=1 if not messages else 0,  # short polling alone may miss messages on real SQS
            VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
        ).get("Messages", [])
        if not batch:
            break
        messages.extend(batch)
    return messages


def _park_unreadable(queue: str, sqs_message: dict, reason: str = "unreadable DLQ message body") -> str:
    # Not ours to replay, but never lose it: keep a parked row with the raw body, under the SQS
    # message's own id (an unsigned body's originalMessageId is not believed either).
    original_id = sqs_message["MessageId"]
    DLQMessage.objects.get_or_create(
        queue_name=queue,
        original_message_id=original_id,
        defaults={
            "payload": {"raw": sqs_message["Body"][:200_000]},
            "status": DLQMessage.Status.PARKED,
            "last_error": reason,
        },
    )
    logger.error("DLQ %s: message %s parked unreplayed: %s", queue, original_id, reason)
    return original_id


def _superseded(row: DLQMessage, copy_round: int) -> bool:
    """This copy need not run: the message was replayed or parked, or a newer copy exists."""
    return row.status != DLQMessage.Status.PENDING or copy_round < row.retry_count


def _take_turn(row: DLQMessage, now) -> bool:
    """Conditional update: only one replay at a time runs the handler of a given original message.

    The lease outlives the SQS visibility of the copy being replayed: if this process dies
    mid-handler, the copy reappears when the lease is over and the next replay runs it.
    """
    return bool(
        DLQMessage.objects.filter(pk=row.pk, status=DLQMessage.Status.PENDING, retry_count=row.retry_count)
        .filter(Q(replay_lease_until__isnull=True) | Q(replay_lease_until__lt=now))
        .update(last_attempt_at=now, replay_lease_until=now + timedelta(seconds=REPLAY_VISIBILITY_SECONDS))
    )


def dlq_replay(queue: str, *, limit: int = MAX_REPLAY_BATCH) -> ReplayResult:
    """Replay up to ``limit`` (at most 100) messages of one DLQ through their original handler.

    Copies of one original message are replayed once: several copies in one batch, and a copy
    older than the row's retry counter (superseded by the copy a failed replay sent back) are
    deleted as duplicates — the row keeps the payload. A copy of a message another replay is
    running right now stays in the DLQ, hidden until that replay's lease is over ("busy").
    """
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
            copy_round = int(body.get("retryCount", 0))
        except (ValueError, KeyError, TypeError):
            result.parked.append(_park_unreadable(queue, sqs_message))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue
        if not dlq_signature_valid(queue=queue, body=body):
            reason = "the DLQ message is not signed by the platform: parked, never processed"
            result.parked.append(_park_unreadable(queue, sqs_message, reason))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue

        row, _ = DLQMessage.objects.get_or_create(
            queue_name=queue,
            original_message_id=original_id,
            defaults={"payload": payload, "last_error": body.get("error", ""), "retry_count": copy_round},
        )
        now = timezone.now()
        if original_id in seen or _superseded(row, copy_round):
            result.duplicates += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue
        if not _take_turn(row, now):
            row.refresh_from_db()
            if _superseded(row, copy_round):  # another replay finished it between our read and update
                result.duplicates += 1
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
                continue
            # Another replay is running it now; its outcome is unknown, so this copy is kept, out of
            # sight until that replay's lease is over (if it died, this copy carries on).
            hidden = (row.replay_lease_until - now).total_seconds() if row.replay_lease_until else 0
            sqs.change_message_visibility(
                QueueUrl=queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=min(43200, max(1, int(hidden) + LEASE_MARGIN_SECONDS)),
            )
            result.busy += 1
            continue
        seen.add(original_id)
        row.last_attempt_at = now

        try:
            handler(row.payload)
        except Exception as exc:  # the handler's own failure: count it, keep the payload
            row.retry_count += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:10000]
            if row.retry_count >= MAX_REPLAY_ATTEMPTS:
                row.status = DLQMessage.Status.PARKED
                result.parked.append(original_id)
                logger.error("DLQ %s: %s parked after %s attempts: %s", queue, original_id, row.retry_count, exc)
                alerts.alert_raise(
                    f"dlq-parked:{queue}",
                    subject=f"{queue}: a message was parked after {row.retry_count} replays",
                    detail=f"DLQ {queue}: {original_id} failed {row.retry_count} replays, waits for a human: {exc}",
                )
            else:
                # The new copy goes out before the old one is deleted: a crash in between leaves two
                # copies (the older one is then recognised as superseded), never none.
                body.update(retryCount=row.retry_count, error=row.last_error)
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
                result.failed.append(original_id)
                logger.warning("DLQ %s: replay of %s failed (%s): %s", queue, original_id, row.retry_count, exc)
            row.replay_lease_until = None
            row.save(update_fields=["retry_count", "last_error", "last_attempt_at", "status", "replay_lease_until"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            continue

        row.status = DLQMessage.Status.REPLAYED
        row.replay_lease_until = None
        row.save(update_fields=["status", "last_attempt_at", "replay_lease_until"])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        result.replayed.append(original_id)
    return result
