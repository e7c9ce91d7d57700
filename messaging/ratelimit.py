"""Token buckets in DynamoDB, shared by every worker process and thread (RateLimitTrackers table).

A bucket holds up to ``capacity`` tokens (rate × RATE_LIMIT_BURST_SECONDS, at least 1) and refills at
``rate`` tokens per second; a provider call takes one token. The state (tokens, updated_at) lives in
one item per bucket, changed only by a conditional write on its version: read, refill, take, write
"if nobody wrote since I read"; a lost race re-reads. So no two workers ever spend the same token,
and the rate holds across any number of processes. Items expire (TTL, 24 h) when a bucket is idle;
a missing item is a full bucket.

Buckets (all rates configurable in settings, see README "Configuration"):
- ``whatsapp-phone#<phone-number-id>``: RATE_LIMIT_WHATSAPP_PER_PHONE (80/s, Meta's per-number throughput)
- ``eum-social-account``: RATE_LIMIT_EUM_SOCIAL_ACCOUNT (1000 requests/s for the account, every call)
- ``whatsapp-media``: RATE_LIMIT_WHATSAPP_MEDIA (100/s, PostWhatsAppMessageMedia)
- ``sms``: RATE_LIMIT_SMS (5/s); ``email``: RATE_LIMIT_EMAIL (10/s)

`rate_limit_acquire(buckets, max_wait=...)` takes one token from each bucket, sleeping while the wait
is short; past ``max_wait`` it gives back what it took and raises `RateLimited(retry_after)`, and the
caller re-queues the send with that delay. A send is never dropped or failed for a rate limit.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from wecare import dynamo

logger = logging.getLogger(__name__)

IDLE_TTL = timedelta(hours=24)
MAX_RACES = 25  # conditional writes lost in a row before we report a (short) wait instead


@dynamo.register
class RateLimitTracker(Model):
    class Meta:
        table_name = dynamo.table_name("rate-limits")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    bucket = UnicodeAttribute(hash_key=True)
    tokens = NumberAttribute()
    updated_at = NumberAttribute()  # epoch seconds, fractional
    version = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    capacity: float  # most tokens the bucket holds (the largest burst)

    @classmethod
    def per_second(cls, key: str, rate: float) -> Bucket:
        return cls(key=key, rate=rate, capacity=max(1.0, rate * settings.RATE_LIMIT_BURST_SECONDS))


class RateLimited(Exception):  # noqa: N818 - a state, not a failure
    """No token within the allowed wait: try again after ``retry_after`` seconds."""

    def __init__(self, bucket: str, retry_after: float):
        super().__init__(f"rate limit {bucket}: next token in {retry_after:.3f}s")
        self.bucket = bucket
        self.retry_after = retry_after


def whatsapp_send_buckets(phone_number_id: str) -> list[Bucket]:
    return [
        Bucket.per_second(f"whatsapp-phone#{phone_number_id}", settings.RATE_LIMIT_WHATSAPP_PER_PHONE),
        Bucket.per_second("eum-social-account", settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT),
    ]


def whatsapp_media_buckets() -> list[Bucket]:
    return [
        Bucket.per_second("whatsapp-media", settings.RATE_LIMIT_WHATSAPP_MEDIA),
        Bucket.per_second("eum-social-account", settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT),
    ]


def sms_buckets() -> list[Bucket]:
    return [Bucket.per_second("sms", settings.RATE_LIMIT_SMS)]


def email_buckets() -> list[Bucket]:
    return [Bucket.per_second("email", settings.RATE_LIMIT_EMAIL)]


def _conflict(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def try_acquire(bucket: Bucket) -> float:
    """Take one token if there is one: returns 0.0, else the seconds until one will be there."""
    for _ in range(MAX_RACES):
        now = time.time()
        try:
            item = RateLimitTracker.get(bucket.key, consistent_read=True)
        except DoesNotExist:
            fresh = RateLimitTracker(
                bucket.key, tokens=bucket.capacity - 1, updated_at=now, version=1, expires_at=IDLE_TTL
            )
            try:
                fresh.save(condition=RateLimitTracker.bucket.does_not_exist(), add_version_condition=False)
                return 0.0
            except PutError as exc:
                if _conflict(exc):
                    continue
                raise
        # Another host's clock may run ahead: never move time backwards, never refill from the future.
        elapsed = max(0.0, now - item.updated_at)
        tokens = min(bucket.capacity, item.tokens + elapsed * bucket.rate)
        if tokens < 1.0:
            return (1.0 - tokens) / bucket.rate
        try:
            item.update(
                actions=[
                    RateLimitTracker.tokens.set(tokens - 1.0),
                    RateLimitTracker.updated_at.set(max(now, item.updated_at)),
                    RateLimitTracker.version.set(item.version + 1),
                    RateLimitTracker.expires_at.set(IDLE_TTL),
                ],
                condition=RateLimitTracker.version == item.version,
                add_version_condition=False,
            )
            return 0.0
        except UpdateError as exc:
            if _conflict(exc):
                continue
            raise
    # Heavy contention: behave as if the bucket were empty for one token's time.
    return 1.0 / bucket.rate


def refund(bucket: Bucket) -> None:
    """Give a token back (a multi-bucket acquisition that could not complete)."""
    try:
        RateLimitTracker(bucket.key).update(
            actions=[RateLimitTracker.tokens.add(1), RateLimitTracker.version.add(1)],
            condition=RateLimitTracker.bucket.exists(),
            add_version_condition=False,
        )
    except UpdateError as exc:
        if not _conflict(exc):
            raise


def rate_limit_acquire(buckets: list[Bucket], *, max_wait: float | None = None) -> float:
    """One token from every bucket, waiting up to ``max_wait`` seconds in all; returns the time waited.

    Raises RateLimited (with nothing taken) when the wait would be longer.
    """
    max_wait = settings.RATE_LIMIT_MAX_WAIT_SECONDS if max_wait is None else max_wait
    start = time.monotonic()
    taken: list[Bucket] = []
    for bucket in buckets:
        while True:
            wait = try_acquire(bucket)
            if wait <= 0:
                taken.append(bucket)
                break
            # A little jitter, so waiting workers do not all wake for the same token.
            wait *= 1 + random.random() * 0.2
            if time.monotonic() - start + wait > max_wait:
                for done in taken:
                    refund(done)
                raise RateLimited(bucket.key, wait)
            time.sleep(wait)
    return time.monotonic() - start
