"""What the operations page shows and the queue metrics beat emits: read-only selectors.

- ``queue_overview``: every work queue and DLQ — waiting, in flight and delayed (SQS's approximate
  counts) and the age of the oldest waiting work, read from the rows that work belongs to (SQS
  tells no age through its API: a queued outbound message, a pending inbound event, a queued bulk
  chunk, a pending DLQ record).
- ``sends_per_minute``, ``delivery_rates``, ``failures_by_reason``: outbound messages of the last 24 h.
- ``tier_use``: business-initiated conversations per WhatsApp number, % of the tier.
- ``rate_limit_saturation``: how empty each token bucket is now (DynamoDB, expired items ignored).
- ``recent_errors``: the last 50 failures (messages, DLQ records, inbound events, bulk chunks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from bulk.models import BulkJobChunk, ChunkStatus
from contacts.models import Channel
from messaging import ratelimit
from messaging.dlq import dlq_names
from messaging.models import Direction, DLQMessage, InboundEvent, Message, MessageStatus
from messaging.tier import tier_status
from wecare import aws, dynamo, metrics
from wecare.logs import mask

WINDOW = timedelta(hours=24)
ERRORS_SHOWN = 50


@dataclass
class QueueInfo:
    name: str
    dlq: bool
    waiting: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    oldest_age_seconds: int | None = None
    error: str = ""

    @property
    def replayable(self) -> bool:
        return self.dlq and not self.error


def _oldest(queue: str, now: datetime) -> datetime | None:
    """The oldest work still waiting behind a queue, from our own rows."""
    if queue == settings.QUEUE_OUTBOUND:
        rows = Message.objects.filter(direction=Direction.OUTBOUND, status=MessageStatus.QUEUED)
        return rows.aggregate(at=Min("created_at"))["at"]
    if queue == settings.QUEUE_INBOUND:
        return InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).aggregate(at=Min("received_at"))["at"]
    if queue == settings.QUEUE_BULK:
        rows = BulkJobChunk.objects.filter(status=ChunkStatus.QUEUED)
        return rows.aggregate(at=Min("queued_at"))["at"]
    if queue in dlq_names():
        rows = DLQMessage.objects.filter(queue_name=queue, status=DLQMessage.Status.PENDING)
        return rows.aggregate(at=Min("created_at"))["at"]
    return None


def queue_names() -> list[tuple[str, bool]]:
    work = [settings.QUEUE_DEFAULT, settings.QUEUE_OUTBOUND, settings.QUEUE_INBOUND, settings.QUEUE_BULK]
    return [(name, False) for name in work] + [(name, True) for name in dlq_names()]


def queue_overview(now: datetime | None = None) -> list[QueueInfo]:
    now = now or timezone.now()
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    sqs = aws.client("sqs")
    result = []
    for name, is_dlq in queue_names():
        info = QueueInfo(name=name, dlq=is_dlq)
        try:
            url = sqs.get_queue_url(QueueName=prefix + name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            info.waiting = int(attrs.get("ApproximateNumberOfMessages", 0))
            info.in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
            info.delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
        except Exception as exc:  # one unreachable queue must not hide the others
            info.error = type(exc).__name__
        oldest = _oldest(name, now)
        info.oldest_age_seconds = max(0, int((now - oldest).total_seconds())) if oldest else None
        result.append(info)
    return result


def queues_observe() -> list[QueueInfo]:
    """Beat, every minute: QueueDepth and QueueOldestAge per queue, TierUsePercent per number."""
    queues = queue_overview()
    for info in queues:
        if info.waiting is not None:
            metrics.emit("QueueDepth", info.waiting + (info.delayed or 0), queue=info.name)
        metrics.emit("QueueOldestAge", info.oldest_age_seconds or 0, queue=info.name)
    for row in tier_use():
        metrics.emit("TierUsePercent", row["percent"], phone_number_id=row["phone_number_id"])
    return queues


def sends_per_minute(now: datetime | None = None) -> dict[str, list[int]]:
    """Outbound messages sent per minute per channel over the last 24 hours (oldest minute first)."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = now - WINDOW + timedelta(minutes=1)
    series = {channel: [0] * 1440 for channel in Channel.values}
    rows = (
        Message.objects.filter(direction=Direction.OUTBOUND, sent_at__gte=start)
        .annotate(minute=TruncMinute("sent_at"))
        .values("channel", "minute")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        index = int((row["minute"] - start).total_seconds() // 60)
        if 0 <= index < 1440 and row["channel"] in series:
            series[row["channel"]][index] += row["n"]
    return series


def delivery_rates(now: datetime | None = None) -> list[dict]:
    """Per channel over 24 h: sent, delivered, read, failed, and delivery / read rates (%)."""
    since = (now or timezone.now()) - WINDOW
    rows = (
        Message.objects.filter(direction=Direction.OUTBOUND, created_at__gte=since)
        .values("channel")
        .annotate(
            sent=Count("pk", filter=Q(sent_at__isnull=False)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
            read=Count("pk", filter=Q(read_at__isnull=False)),
            failed=Count("pk", filter=Q(status=MessageStatus.FAILED)),
        )
    )
    by_channel = {row["channel"]: row for row in rows}
    result = []
    for channel in Channel.values:
        row = by_channel.get(channel, {"sent": 0, "delivered": 0, "read": 0, "failed": 0})
        sent = row["sent"]
        result.append(
            {
                "channel": channel,
                **{k: row[k] for k in ("sent", "delivered", "read", "failed")},
                "delivery_rate": round(100 * row["delivered"] / sent, 1) if sent else None,
                "read_rate": round(100 * row["read"] / sent, 1) if sent else None,
            }
        )
    return result


def failures_by_reason(now: datetime | None = None, *, top: int = 10) -> list[dict]:
    since = (now or timezone.now()) - WINDOW
    rows = (
        Message.objects.filter(direction=Direction.OUTBOUND, status=MessageStatus.FAILED, failed_at__gte=since)
        .values("error_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "error_code")[:top]
    )
    return [{"reason": row["error_code"] or "UNKNOWN", "count": row["n"]} for row in rows]


def tier_use() -> list[dict]:
    result = []
    for phone in settings.WHATSAPP_PHONE_NUMBER_IDS:
        status = tier_status(phone)
        percent = round(100 * status.used / status.limit, 1) if status.limit else 0.0
        result.append({"phone_number_id": phone, "used": status.used, "limit": status.limit, "percent": percent})
    return result


def _buckets() -> list[ratelimit.Bucket]:
    buckets: dict[str, ratelimit.Bucket] = {}
    for phone in settings.WHATSAPP_PHONE_NUMBER_IDS:
        for bucket in ratelimit.whatsapp_send_buckets(phone):
            buckets[bucket.key] = bucket
    others = ratelimit.whatsapp_media_buckets() + ratelimit.sms_buckets() + ratelimit.email_buckets()
    for bucket in others + ratelimit.voice_buckets() + ratelimit.rcs_buckets():
        buckets[bucket.key] = bucket
    return list(buckets.values())


def rate_limit_saturation(now: float | None = None) -> list[dict]:
    """How much of each bucket is used right now: 0 % a full bucket, 100 % an empty one."""
    now_us = int((time.time() if now is None else now) * ratelimit.MICROSECONDS)
    buckets = _buckets()
    items = {}
    for item in ratelimit.RateLimitTracker.batch_get([b.key for b in buckets]):
        # TTL deletion is lazy: an expired item is an idle (full) bucket, as if it were gone.
        if dynamo.item_alive(item.expires_at, now=now_us / ratelimit.MICROSECONDS):
            items[item.bucket] = item
    result = []
    for bucket in buckets:
        item = items.get(bucket.key)
        available = bucket.capacity
        if item is not None:
            seconds_left = (now_us + bucket.capacity / bucket.rate * ratelimit.MICROSECONDS - int(item.tat)) / 1e6
            available = min(bucket.capacity, max(0.0, seconds_left * bucket.rate))
        used = round(100 * (1 - available / bucket.capacity), 1)
        result.append({"bucket": bucket.key, "rate": bucket.rate, "capacity": bucket.capacity, "percent": used})
    return result


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def recent_errors(limit: int = ERRORS_SHOWN) -> list[dict]:
    """The last failures everywhere, newest first, each with its id and a link to it. Texts are masked."""
    errors: list[dict] = []
    for m in (
        Message.objects.filter(status=MessageStatus.FAILED, failed_at__isnull=False)
        .order_by("-failed_at")
        .values("pk", "failed_at", "channel", "error_code")[:limit]
    ):
        errors.append(
            {
                "at": m["failed_at"],
                "kind": f"{m['channel']} message",
                "id": str(m["pk"]),
                "summary": m["error_code"] or "failed",
                "url": _url("admin:messaging_message_change", m["pk"]),
            }
        )
    for d in DLQMessage.objects.order_by("-created_at").values(
        "pk", "created_at", "queue_name", "status", "last_error"
    )[:limit]:
        errors.append(
            {
                "at": d["created_at"],
                "kind": f"{d['queue_name']} ({d['status']})",
                "id": str(d["pk"]),
                "summary": (d["last_error"] or "").splitlines()[0][:200] if d["last_error"] else "dead-lettered",
                "url": _url("admin:messaging_dlqmessage_change", d["pk"]),
            }
        )
    for e in (
        InboundEvent.objects.filter(status=InboundEvent.Status.FAILED)
        .order_by("-received_at")
        .values("pk", "received_at", "error")[:limit]
    ):
        errors.append(
            {
                "at": e["received_at"],
                "kind": "inbound event",
                "id": str(e["pk"]),
                "summary": (e["error"] or "").splitlines()[0][:200] if e["error"] else "failed",
                "url": _url("admin:messaging_inboundevent_change", e["pk"]),
            }
        )
    for c in (
        BulkJobChunk.objects.filter(status=ChunkStatus.DEAD_LETTERED)
        .order_by("-finished_at")
        .values("pk", "job_id", "finished_at", "last_error")[:limit]
    ):
        errors.append(
            {
                "at": c["finished_at"],
                "kind": "bulk chunk",
                "id": str(c["job_id"]),
                "summary": (c["last_error"] or "").splitlines()[0][:200] if c["last_error"] else "dead-lettered",
                "url": _url("bulk_pages:detail", c["job_id"]),
            }
        )
    errors = [e for e in errors if e["at"] is not None]
    errors.sort(key=lambda e: e["at"], reverse=True)
    for e in errors[:limit]:
        e["summary"] = mask(e["summary"])
    return errors[:limit]
