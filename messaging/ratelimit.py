"""Token buckets in DynamoDB, shared by every worker process and thread (RateLimitTrackers table).

A bucket holds up to ``capacity`` tokens (rate × RATE_LIMIT_BURST_SECONDS, at least 1) and refills at
``rate`` tokens per second; a provider call takes one token. The bucket is stored in its GCRA form
(the generic cell rate algorithm, an exact equivalent of a token bucket): one number per bucket,
``tat``, the moment at which the bucket will be full again. Taking a token is one atomic conditional
UpdateItem, evaluated by DynamoDB itself:

- busy bucket (now < tat ≤ now + (capacity - 1)/rate): ``ADD tat <1/rate>`` if that still holds;
- idle bucket (tat ≤ now, or no item): ``SET tat = now + <1/rate>`` if that still holds;
- otherwise the bucket is empty: the next token comes at tat - (capacity - 1)/rate.

No read-modify-write, so concurrent workers never invalidate each other's writes, and however many
processes share a bucket they cannot take more than capacity + rate × t tokens in any t seconds.
Tokens available now = (now + capacity/rate - tat) × rate. Items expire (TTL, 24 h) when a bucket
is idle; a missing item is a full bucket. Times are integer microseconds (exact in DynamoDB).
Workers' clocks are assumed to agree within a few ms (NTP).

Buckets (all rates configurable in settings, see README "Configuration"):
- ``whatsapp-phone#<phone-number-id>``: RATE_LIMIT_WHATSAPP_PER_PHONE (80/s, Meta's per-number throughput)
- ``eum-social-account``: RATE_LIMIT_EUM_SOCIAL_ACCOUNT (1000 requests/s for the account, every call;
  skipped while the buckets below cannot add up to it, see `account_bucket_needed`)
- ``whatsapp-media``: RATE_LIMIT_WHATSAPP_MEDIA (100/s, PostWhatsAppMessageMedia)
- ``sms``: RATE_LIMIT_SMS (5/s); ``email``: RATE_LIMIT_EMAIL (10/s); ``voice``: RATE_LIMIT_VOICE (1 call/s);
  ``rcs``: RATE_LIMIT_RCS (10/s)

`rate_limit_acquire(buckets, max_wait=...)` takes one token from each bucket, sleeping while the wait
is short; past ``max_wait`` it gives back what it took and raises `RateLimited(retry_after)`, and the
caller re-queues the send with that delay. A send is never dropped or failed for a rate limit.

Tokens in batches (one DynamoDB write per batch, not per message): a process takes up to
RATE_LIMIT_BATCH_SECONDS × rate tokens (at most RATE_LIMIT_BATCH_MAX; fewer while it spends fewer,
see `_Held.next_size`) in one conditional ``ADD tat
<n/rate>`` and hands them to its threads. Each token keeps its own time, the moment the GCRA would
have granted it alone (the batch reserves up to RATE_LIMIT_BATCH_SECONDS ahead): a thread that takes
it sleeps until then, and a token is spent at most its grace after its time (RATE_LIMIT_TOKEN_GRACE_
SECONDS, or half the bucket's burst if longer, capped by `_headroom`) or never: it expires; nothing to
give back, the bucket has already moved on. The batches are taken with a burst that much shorter
(down to none), so the spends of all processes together never put more into any 1-s window than
one-by-one taking would, floor(capacity + rate): the cap is what keeps a late token from bunching.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from wecare import dynamo, metrics
from wecare.errors import RetryLater

logger = logging.getLogger(__name__)

IDLE_TTL = timedelta(hours=24)
MAX_RACES = 25  # rounds lost to concurrent refills in a row before we report a (short) wait instead
MICROSECONDS = 1_000_000
# The tat this process last saw per bucket: only a hint of which write to try first.
_last_tat: dict[str, int] = {}
_round_trip = [0.0]  # a DynamoDB update's usual round trip here, µs (moving average)


def _now() -> int:
    return time.time_ns() // 1000


@dynamo.register
class RateLimitTracker(Model):
    class Meta:
        table_name = dynamo.table_name("rate-limits")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    bucket = UnicodeAttribute(hash_key=True)
    # Theoretical arrival time: epoch microseconds (an integer, exact in DynamoDB and in every
    # client) at which the bucket is full again.
    tat = NumberAttribute()
    expires_at = TTLAttribute(null=True)


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    capacity: float  # most tokens the bucket holds (the largest burst)

    @classmethod
    def per_second(cls, key: str, rate: float) -> Bucket:
        return cls(key=key, rate=rate, capacity=max(1.0, rate * settings.RATE_LIMIT_BURST_SECONDS))


class RateLimited(RetryLater):  # noqa: N818 - a state, not a failure
    """No token within the allowed wait: try again after ``retry_after`` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, bucket: str, retry_after: float):
        super().__init__(f"rate limit {bucket}: next token in {retry_after:.3f}s")
        self.bucket = bucket
        self.retry_after = retry_after


def account_bucket_needed() -> bool:
    """The account bucket can bind only if the per-number and media buckets together may exceed it.

    Every call to EUM Social takes a token from a phone-number bucket or the media bucket first; their
    combined capacity and rate (numbers × RATE_LIMIT_WHATSAPP_PER_PHONE + RATE_LIMIT_WHATSAPP_MEDIA)
    bound the account's calls. When that is within RATE_LIMIT_EUM_SOCIAL_ACCOUNT (by default
    2 × 80 + 100 ≤ 1000) the account bucket is skipped: one DynamoDB write fewer per message.
    """
    numbers = max(1, len(settings.WHATSAPP_PHONE_NUMBER_IDS))
    combined = numbers * settings.RATE_LIMIT_WHATSAPP_PER_PHONE + settings.RATE_LIMIT_WHATSAPP_MEDIA
    return combined > settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT


def _account_bucket() -> list[Bucket]:
    if not account_bucket_needed():
        return []
    return [Bucket.per_second("eum-social-account", settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT)]


def whatsapp_send_buckets(phone_number_id: str) -> list[Bucket]:
    phone = Bucket.per_second(f"whatsapp-phone#{phone_number_id}", settings.RATE_LIMIT_WHATSAPP_PER_PHONE)
    return [phone, *_account_bucket()]


def whatsapp_media_buckets() -> list[Bucket]:
    return [Bucket.per_second("whatsapp-media", settings.RATE_LIMIT_WHATSAPP_MEDIA), *_account_bucket()]


def sms_buckets() -> list[Bucket]:
    return [Bucket.per_second("sms", settings.RATE_LIMIT_SMS)]


def email_buckets() -> list[Bucket]:
    return [Bucket.per_second("email", settings.RATE_LIMIT_EMAIL)]


def voice_buckets() -> list[Bucket]:
    return [Bucket.per_second("voice", settings.RATE_LIMIT_VOICE)]


def rcs_buckets() -> list[Bucket]:
    return [Bucket.per_second("rcs", settings.RATE_LIMIT_RCS)]


def _conflict(exc: UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def _update(bucket: Bucket, actions: list, condition) -> int | None:
    """The bucket's new tat if the conditional write went through, None if its condition failed."""
    item = RateLimitTracker(bucket.key)
    try:
        item.update(
            actions=[*actions, RateLimitTracker.expires_at.set(IDLE_TTL)],
            condition=condition,
            add_version_condition=False,
        )
        return int(item.tat)
    except UpdateError as exc:
        if _conflict(exc):
            return None
        raise


def try_acquire(bucket: Bucket) -> float:
    """Take one token if there is one: returns 0.0, else the seconds until one will be there."""
    interval = max(1, round(MICROSECONDS / bucket.rate))
    tolerance = round((bucket.capacity - 1.0) * interval)  # how far ahead of now tat may run
    tat = RateLimitTracker.tat
    for _ in range(MAX_RACES):
        now = _now()
        busy = (tat > now) & (tat <= now + tolerance)  # a token left: ADD one interval
        idle = tat.does_not_exist() | (tat <= now)  # full: start again from now
        # Try first what this process saw last time (busy under load, idle when quiet): usually one write.
        first, second = (idle, busy) if _last_tat.get(bucket.key, 0) <= now else (busy, idle)
        for condition in (first, second):
            action = tat.set(now + interval) if condition is idle else tat.add(interval)
            if (new_tat := _update(bucket, [action], condition)) is not None:
                _last_tat[bucket.key] = new_tat
                return 0.0
        try:
            current = RateLimitTracker.get(bucket.key, consistent_read=True).tat
        except DoesNotExist:
            continue  # expired meanwhile: try again
        _last_tat[bucket.key] = int(current)
        wait = int(current) - tolerance - _now()
        if wait > 0:
            return wait / MICROSECONDS
        # The bucket refilled between our writes and this read: try again.
    return interval / MICROSECONDS


def refund(bucket: Bucket) -> None:
    """Give a token back (a multi-bucket acquisition that could not complete)."""
    interval = max(1, round(MICROSECONDS / bucket.rate))
    _update(bucket, [RateLimitTracker.tat.add(-interval)], RateLimitTracker.tat.exists())
    _last_tat.pop(bucket.key, None)


def _interval(bucket: Bucket) -> int:
    return max(1, round(MICROSECONDS / bucket.rate))


def _batch_size(bucket: Bucket) -> int:
    size = round(bucket.rate * settings.RATE_LIMIT_BATCH_SECONDS)
    return max(1, min(settings.RATE_LIMIT_BATCH_MAX, size))


def _batch_times(start: int, n: int, interval: int, tolerance: int, *, idle: bool, received: int) -> list[int]:
    """The times of a batch's n tokens (µs). Each token keeps its own time, even one already due when the
    answer came: moved to the answer's time, several would bunch there (a second above the limit); past
    `_lateness` it expires instead. The idle start allows for the usual round trip, so that is rare. Only
    the first token of a full (idle) bucket is due from the answer, as one-by-one taking grants it (a slow
    answer must not cost a slow bucket its only token: 5 s at 0.2/s)."""
    times = [start + k * interval - tolerance for k in range(n)]
    if idle:
        times[0] = max(times[0], received)
    return times


def take_batch(bucket: Bucket, count: int, *, lookahead: float = 0.0, grace: float = 0.0) -> tuple[list[int], float]:
    """Take up to ``count`` tokens in one conditional update, reserving up to ``lookahead`` seconds ahead.

    Returns (each token's time, epoch µs, ascending; 0.0) or ([], seconds until one can be had).
    A token is to be spent at its time or at most ``grace`` seconds later: the burst the bucket
    allows is ``grace`` shorter, so spends stay within capacity + rate × t (module docstring).
    """
    interval = _interval(bucket)
    tolerance = max(0, round((bucket.capacity - 1.0) * interval) - round(grace * MICROSECONDS))
    reach = round(lookahead * MICROSECONDS) + tolerance  # token k of a batch from tat: tat + k·interval - tolerance
    tat = RateLimitTracker.tat
    for _ in range(MAX_RACES):
        now = _now()
        seen = _last_tat.get(bucket.key, 0)
        if seen <= now:  # idle (or so it was): start again from when the answer will be here
            n = min(count, reach // interval + 1)
            arrival = now + round(_round_trip[0])
            new_tat = _update(bucket, [tat.set(arrival + n * interval)], tat.does_not_exist() | (tat <= now))
        elif (room := now + reach - seen) >= 0:  # busy: as many tokens as fall before now + lookahead
            n = min(count, room // interval + 1)
            condition = (tat > now) & (tat <= now + reach - (n - 1) * interval)
            new_tat = _update(bucket, [tat.add(n * interval)], condition)
        else:
            new_tat = None
        if new_tat is not None:
            _last_tat[bucket.key] = new_tat
            start = new_tat - n * interval
            received = _now()
            _round_trip[0] = 0.8 * _round_trip[0] + 0.2 * (received - now)
            return _batch_times(start, n, interval, tolerance, idle=seen <= now, received=received), 0.0
        try:
            current = int(RateLimitTracker.get(bucket.key, consistent_read=True).tat)
        except DoesNotExist:
            _last_tat[bucket.key] = 0  # expired meanwhile: a full bucket
            continue
        _last_tat[bucket.key] = current
        wait = current - reach - _now()
        if wait > 0:
            return [], wait / MICROSECONDS
    return [], interval / MICROSECONDS


def take_batches_jointly(wanted: list[tuple[Bucket, int]], *, lookahead: float) -> dict[Bucket, list[int]] | None:
    """`take_batch` for several buckets at once, in one DynamoDB call (TransactWriteItems, all or none).

    Each bucket's write is the one `take_batch` would try first, with a condition at least as strict
    (a busy bucket must still be at the tat this process last saw, so the new tat is known without a
    read). Returns each bucket's token times, or None when any condition failed or a bucket has no
    token within ``lookahead``: nothing was taken, the caller takes them one by one.
    """
    tat = RateLimitTracker.tat
    now = _now()
    arrival = now + round(_round_trip[0])
    planned = []
    transaction = TransactWrite(connection=RateLimitTracker._get_connection().connection)
    for bucket, count in wanted:
        interval = _interval(bucket)
        tolerance = max(0, round((bucket.capacity - 1.0) * interval) - round(_grace(bucket) * MICROSECONDS))
        reach = round(lookahead * MICROSECONDS) + tolerance
        seen = _last_tat.get(bucket.key, 0)
        if seen <= now:  # idle, as far as this process saw
            n = min(count, reach // interval + 1)
            new_tat, condition = arrival + n * interval, tat.does_not_exist() | (tat <= now)
        elif (room := now + reach - seen) >= 0:
            n = min(count, room // interval + 1)
            new_tat, condition = seen + n * interval, tat == seen
        else:
            return None
        item = RateLimitTracker(bucket.key)
        actions = [tat.set(new_tat), RateLimitTracker.expires_at.set(IDLE_TTL)]
        transaction.update(item, actions=actions, condition=condition, add_version_condition=False)
        planned.append((bucket, n, new_tat, tolerance, interval, seen <= now))
    try:
        transaction._commit()  # the context manager's commit, without hiding the error in __exit__
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            for bucket, *_ in planned:
                _last_tat.pop(bucket.key, None)  # the hint was wrong: the one-by-one path reads afresh
            return None
        raise
    received = _now()
    _round_trip[0] = 0.8 * _round_trip[0] + 0.2 * (received - now)
    batches = {}
    for bucket, n, new_tat, tolerance, interval, idle in planned:
        _last_tat[bucket.key] = new_tat
        start = new_tat - n * interval
        batches[bucket] = _batch_times(start, n, interval, tolerance, idle=idle, received=received)
    return batches


class _Held:
    """Tokens this process took in batches and has not spent yet: their times per bucket, oldest first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[Bucket, deque[int]] = {}
        # Batch size per bucket: halved when tokens expired unspent (this process needs fewer than
        # the rate allows), doubled up to the maximum when a batch was used up.
        self.sizes: dict[Bucket, int] = {}
        self.wasted: dict[Bucket, int] = {}
        # Tokens handed to threads that have not spent them yet (they wait for their time).
        self.in_hand: dict[Bucket, int] = {}

    def unneeded(self, bucket: Bucket, demand: int | None) -> bool:
        """Whether the tokens held and in hand already cover ``demand`` (None: no limit)."""
        covered = len(self.tokens.get(bucket, ())) + self.in_hand.get(bucket, 0)
        return demand is not None and covered >= demand

    def pop(self, bucket: Bucket, grace: int) -> int | None:
        """The oldest token not yet expired (its time + ``grace`` µs not past); expired ones are dropped."""
        tokens = self.tokens.get(bucket)
        now = _now()
        while tokens:
            when = tokens.popleft()
            if when + grace >= now:
                return when
            self.wasted[bucket] = self.wasted.get(bucket, 0) + 1
        return None

    def next_size(self, bucket: Bucket) -> int:
        """The next batch: smaller by what expired unspent since the last one, else twice as large."""
        largest = _batch_size(bucket)
        size = self.sizes.get(bucket, largest)
        wasted = self.wasted.pop(bucket, 0)
        size = max(1, size - wasted) if wasted else min(largest, size * 2)
        self.sizes[bucket] = size
        return size

    def put_back(self, bucket: Bucket, when: int) -> None:
        self.tokens.setdefault(bucket, deque()).appendleft(when)

    def add(self, bucket: Bucket, times: list[int]) -> None:
        self.tokens.setdefault(bucket, deque()).extend(times)


_held = _Held()
_fetch_locks: dict[Bucket, threading.Lock] = {}


def _after_fork_in_child() -> None:
    # A forked worker process must not inherit its parent's tokens, nor a lock held at the fork.
    global _held, _fetch_locks
    _held, _fetch_locks = _Held(), {}
    _last_tat.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def held_tokens_forget() -> None:
    """Drop this process's unspent tokens and bucket hints (tests; a forked child starts afresh)."""
    with _held.lock:
        _held.tokens.clear()
        _held.sizes.clear()
        _held.wasted.clear()
        _held.in_hand.clear()
        _fetch_locks.clear()
    _last_tat.clear()


def _grace(bucket: Bucket) -> float:
    """How late a token may be spent, seconds: RATE_LIMIT_TOKEN_GRACE_SECONDS (or half the bucket's burst
    when that is longer), but never more than the bucket's headroom (`_headroom`): a late token must not
    bunch with the next ones into a second above what one-by-one taking allows."""
    burst = (bucket.capacity - 1.0) / bucket.rate
    return min(max(settings.RATE_LIMIT_TOKEN_GRACE_SECONDS, burst / 2), _headroom(bucket))


def _lateness(bucket: Bucket) -> int:
    """How long after its time (µs) a held token may still be spent: its grace, plus the part of the burst
    the batch gave up for that grace (a token's time is that much before its place in the schedule)."""
    grace = round(_grace(bucket) * MICROSECONDS)
    return max(grace, round((bucket.capacity - 1.0) * _interval(bucket)))


def _headroom(bucket: Bucket) -> float:
    """How far, seconds, spends may run ahead of the one-by-one schedule (burst + grace) while no 1-s
    window holds more spends than one-by-one taking allows, floor(capacity + rate).

    Spends in a 1-s window come from tokens due within 1 + burst + grace seconds, one interval apart at
    the closest: at most ceil((1 + burst + grace) / interval) of them, within floor(capacity + rate)
    while 1 + burst + grace ≤ floor(capacity + rate) × interval. That is never less than the burst:
    at 80/s with a 0.02-s burst (capacity 1.6, 81 a second) 12.5 ms, where the default grace of 50 ms
    allowed 85 in a second (1.06 of the limit); at 5/s 200 ms.
    """
    allowed = math.floor(bucket.capacity + bucket.rate)
    return max(0, allowed * _interval(bucket) - MICROSECONDS) / MICROSECONDS


def _fetch(bucket: Bucket, demand: int | None = None) -> tuple[list[int], float]:
    """A new batch into this process's store (the caller holds the bucket's fetch lock), no larger than
    the ``demand`` not yet covered by tokens held or in hand: a token taken beyond it would expire."""
    with _held.lock:
        size = _held.next_size(bucket)
        if demand is not None:
            covered = len(_held.tokens.get(bucket, ())) + _held.in_hand.get(bucket, 0)
            size = max(1, min(size, demand - covered))
    times, wait = take_batch(bucket, size, lookahead=settings.RATE_LIMIT_BATCH_SECONDS, grace=_grace(bucket))
    if times:
        with _held.lock:
            _held.add(bucket, times)
    return times, wait


def _take_one(bucket: Bucket, deadline: float, *, prefetch: bool = True, demand: int | None = None) -> int:
    """One token of ``bucket`` for this thread: its time (µs; up to a batch ahead of now).

    From the tokens this process holds, else from a new batch (one thread fetches, the others wait
    for it and share it). Raises RateLimited when none can be had before ``deadline`` (monotonic).
    ``demand``: how many sends of this process still need a token of the bucket, this one included.
    The token is in hand (`_Held.in_hand`) until the caller spends it or gives it back.
    """
    grace = _lateness(bucket)
    with _held.lock:
        fetch_lock = _fetch_locks.setdefault(bucket, threading.Lock())
    while True:
        with _held.lock:
            when = _held.pop(bucket, grace)
            tokens = _held.tokens.get(bucket)
            last = tokens[-1] if tokens else when
            if when is not None:
                _held.in_hand[bucket] = _held.in_hand.get(bucket, 0) + 1
                prefetch = prefetch and not _held.unneeded(bucket, demand)
        if when is not None:
            # Fetch the next batch ahead, while this token's own time is still a round trip away and
            # what is left would not outlast the round trip: the batches then join without a gap.
            margin = 3 * _round_trip[0]
            ahead = when - _now()
            if prefetch and ahead > margin and last < _now() + margin and fetch_lock.acquire(blocking=False):
                try:
                    _fetch(bucket, demand)
                finally:
                    fetch_lock.release()
            return when
        with fetch_lock:
            with _held.lock:  # another thread may have fetched a batch while we waited for the lock
                when = _held.pop(bucket, grace)
                if when is not None:
                    _held.in_hand[bucket] = _held.in_hand.get(bucket, 0) + 1
                    return when
            times, wait = _fetch(bucket, demand)
            if times:
                with _held.lock:
                    when = _held.pop(bucket, grace)
                    if when is not None:
                        _held.in_hand[bucket] = _held.in_hand.get(bucket, 0) + 1
                        return when
                continue
        wait *= 1 + random.random() * 0.2  # jitter: waiting processes do not all ask at once
        if time.monotonic() + wait > deadline:
            raise RateLimited(bucket.key, wait)
        metrics.emit("RateLimitWaits", bucket=bucket.key.split("#", 1)[0])
        time.sleep(wait)


def _refill_jointly(buckets: list[Bucket]) -> None:
    """When this process holds no token of one of the buckets of an acquisition, every one of them gets
    its next batch, in one DynamoDB call (`take_batches_jointly`) rather than one call per bucket each
    time one runs out; if that fails, `_take_one` takes them one by one as before. Only when no other
    thread of this process is fetching them."""
    with _held.lock:
        any_empty = False
        for bucket in buckets:
            when = _held.pop(bucket, _lateness(bucket))
            if when is None:
                any_empty = True
            else:
                _held.put_back(bucket, when)
        if not any_empty:
            return
        empty = list(dict.fromkeys(buckets))  # a bucket named twice (media upload and send) is written once
        locks = [_fetch_locks.setdefault(bucket, threading.Lock()) for bucket in empty]
    taken = []
    try:
        for lock in locks:
            if not lock.acquire(blocking=False):
                return
            taken.append(lock)
        with _held.lock:
            before = {bucket: (_held.sizes.get(bucket), _held.wasted.get(bucket)) for bucket in empty}
            wanted = [(bucket, _held.next_size(bucket)) for bucket in empty]
        batches = take_batches_jointly(wanted, lookahead=settings.RATE_LIMIT_BATCH_SECONDS)
        with _held.lock:
            if batches is None:  # as if never asked: the one-by-one fetch sizes its batch itself
                for bucket, (size, wasted) in before.items():
                    _held.sizes.pop(bucket, None)
                    if size is not None:
                        _held.sizes[bucket] = size
                    if wasted:
                        _held.wasted[bucket] = wasted
                return
            for bucket, times in batches.items():
                _held.add(bucket, times)
    finally:
        for lock in taken:
            lock.release()


def _spendable_together(taken: list[tuple[Bucket, int]]) -> list[tuple[Bucket, int]]:
    """The tokens of one send are spent together, at the latest one's time. A token of another bucket that
    would have expired by then (an older one held, while a bucket refilled alongside gave a token due
    later) is swapped for this process's next held token of its bucket, which a joint refill usually
    just added; the older one expires unspent, as it would have. Without a fresher token, the old stays."""
    while True:
        spend_at = max(when for _, when in taken)
        swapped = False
        with _held.lock:
            for i, (bucket, when) in enumerate(taken):
                tokens = _held.tokens.get(bucket)
                if when + _lateness(bucket) < spend_at and tokens:
                    _held.wasted[bucket] = _held.wasted.get(bucket, 0) + 1
                    taken[i] = (bucket, tokens.popleft())
                    swapped = True
        if not swapped:
            return taken


def rate_limit_acquire(buckets: list[Bucket], *, max_wait: float | None = None, demand: int | None = None) -> float:
    """One token from every bucket, waiting up to ``max_wait`` seconds in all; returns the time waited.

    Raises RateLimited when the wait would be longer; the tokens taken go back to this process's
    store for the next send (they expire with their time if none comes). ``demand``: how many sends
    of this process still need these buckets, this one included (a bulk chunk's unsent recipients of
    the number): no batch is taken beyond it, so no token is left to expire when the chunk ends.
    """
    max_wait = settings.RATE_LIMIT_MAX_WAIT_SECONDS if max_wait is None else max_wait
    start = time.monotonic()
    deadline = start + max_wait
    late = False
    while True:
        taken: list[tuple[Bucket, int]] = []
        if len(buckets) > 1 and demand is None:  # a bulk chunk sizes each bucket's batch by its demand
            _refill_jointly(buckets)
        try:
            try:
                for bucket in buckets:
                    taken.append((bucket, _take_one(bucket, deadline, prefetch=not late, demand=demand)))
            except RateLimited:
                with _held.lock:
                    for bucket, when in reversed(taken):
                        _held.put_back(bucket, when)
                raise
            taken = _spendable_together(taken)
            # Spend them together, at the latest token's time, and only while none has expired.
            delay = (max(when for _, when in taken) - _now()) / MICROSECONDS
            if delay > 0:
                time.sleep(delay)
            now = _now()
            if all(now <= when + _lateness(bucket) for bucket, when in taken):
                return time.monotonic() - start
        finally:
            with _held.lock:  # spent, given back or expired: no longer in hand
                for bucket, _when in taken:
                    _held.in_hand[bucket] = max(0, _held.in_hand.get(bucket, 0) - 1)
        # Woken too late (a busy CPU): these tokens expired, and spending them could exceed the rate.
        late = True
        if time.monotonic() > deadline:
            raise RateLimited(buckets[0].key, _interval(buckets[0]) / MICROSECONDS)
