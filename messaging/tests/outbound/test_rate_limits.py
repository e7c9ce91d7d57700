"""Token buckets in DynamoDB: shared by processes, never faster than their rate; a send past the limit
waits or is re-queued, never dropped or failed."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import time
import uuid

import pytest
from pynamodb.exceptions import DoesNotExist

from messaging import ratelimit
from messaging.ratelimit import Bucket, RateLimited, RateLimitTracker, rate_limit_acquire, try_acquire
from messaging.services import DeliveryDeferred, message_deliver, message_send, send_request_build


def _forget(bucket: Bucket) -> None:
    with contextlib.suppress(DoesNotExist):
        RateLimitTracker.get(bucket.key).delete()


def _bucket(rate: float = 20.0, capacity: float = 5.0) -> Bucket:
    return Bucket(key=f"test#{uuid.uuid4().hex}", rate=rate, capacity=capacity)


def _tokens(bucket: Bucket) -> float:
    """Tokens in the bucket now, from its stored GCRA time."""
    tat = RateLimitTracker.get(bucket.key, consistent_read=True).tat / 1_000_000  # stored in microseconds
    return min(bucket.capacity, (time.time() + bucket.capacity / bucket.rate - tat) * bucket.rate)


def test_a_new_bucket_is_full_and_then_empties_one_token_per_call():
    bucket = _bucket(rate=0.1, capacity=3.0)

    waits = [try_acquire(bucket) for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 9.0 < waits[3] <= 10.0  # the fourth waits for one token at 0.1/s


def test_an_idle_bucket_refills_at_its_rate_up_to_its_capacity():
    bucket = _bucket(rate=1.0, capacity=2.0)
    for _ in range(2):
        assert try_acquire(bucket) == 0.0

    time.sleep(3.0)  # 3 tokens' worth, but it holds only 2

    assert [try_acquire(bucket) == 0.0 for _ in range(3)] == [True, True, False]


def test_items_expire_by_ttl_a_day_after_last_use():
    bucket = _bucket()
    try_acquire(bucket)

    item = RateLimitTracker.get(bucket.key)

    assert 23 * 3600 < item.expires_at.timestamp() - time.time() <= 24 * 3600


def test_a_wait_longer_than_allowed_raises_and_keeps_the_tokens_it_took_for_the_next_send(dynamodb_calls):
    free, empty = _bucket(rate=10.0, capacity=5.0), _bucket(rate=0.5, capacity=1.0)
    assert try_acquire(empty) == 0.0

    with pytest.raises(RateLimited) as limited:
        rate_limit_acquire([free, empty], max_wait=0.1)

    assert 1.5 < limited.value.retry_after <= 2.5
    # the token taken from `free` went back to this process: the next send spends it, no DynamoDB write
    writes = dynamodb_calls.operations.count("UpdateItem")
    rate_limit_acquire([free], max_wait=0.1)
    assert dynamodb_calls.operations.count("UpdateItem") == writes


def test_a_short_wait_is_waited_out_in_the_worker():
    bucket = _bucket(rate=10.0, capacity=1.0)
    assert try_acquire(bucket) == 0.0

    waited = rate_limit_acquire([bucket], max_wait=1.0)

    assert 0.05 < waited < 0.5


def _acquire_many(key: str, rate: float, capacity: float, count: int, start_at: float, results) -> None:
    # A forked child must not reuse the parent's HTTP connections.
    RateLimitTracker._connection = None
    bucket = Bucket(key=key, rate=rate, capacity=capacity)
    while time.time() < start_at:
        time.sleep(0.005)
    granted = []
    for _ in range(count):
        while (wait := try_acquire(bucket)) > 0:
            time.sleep(wait)
        granted.append(time.time())
    results.put(granted)


def test_four_processes_on_one_bucket_never_exceed_its_rate():
    # given: a 20/s bucket holding at most 5 tokens, and 4 worker processes taking 25 tokens each
    rate, capacity, processes, each = 20.0, 5.0, 4, 25
    key = f"test-multiprocess#{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 1.0
    workers = [
        ctx.Process(target=_acquire_many, args=(key, rate, capacity, each, start_at, results)) for _ in range(processes)
    ]

    # when
    for worker in workers:
        worker.start()
    grants = sorted(t for _ in workers for t in results.get(timeout=60))
    for worker in workers:
        worker.join(timeout=10)

    # then: after the initial burst (the bucket's capacity) tokens come at the rate, not faster
    total = processes * each
    assert len(grants) == total
    elapsed = grants[-1] - grants[0]
    steady_rate = (total - capacity) / elapsed
    print(f"\n{total} tokens in {elapsed:.2f}s: {steady_rate:.2f}/s after the burst (limit {rate}/s)")
    assert steady_rate <= rate * 1.05
    # and in every one-second window at most capacity + rate tokens were handed out (times are taken
    # when each answer arrives, so a slow answer can shift one grant: a tolerance of one)
    busiest = max(sum(1 for t in grants if start <= t < start + 1.0) for start in grants)
    assert busiest <= capacity + rate + 1
    # and the bucket is not needlessly slow under contention
    assert steady_rate >= rate * 0.5


@pytest.mark.django_db
def test_a_send_past_the_limit_is_deferred_and_stays_queued_untouched(make_contact, settings, provider_calls):
    settings.RATE_LIMIT_SMS = 0.2  # one token per 5 s, a burst of one
    settings.RATE_LIMIT_MAX_WAIT_SECONDS = 0.5
    contact = make_contact(sms=True)
    first = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="one"), enqueue=False)
    second = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="two"), enqueue=False)
    _forget(ratelimit.sms_buckets()[0])  # start from a full bucket

    try:
        message_deliver(first.pk)
        with pytest.raises(DeliveryDeferred) as deferred:
            message_deliver(second.pk)
    finally:
        _forget(ratelimit.sms_buckets()[0])  # the SMS bucket is shared by the other tests

    second.refresh_from_db()
    assert 3.5 < deferred.value.countdown <= 6.0
    assert second.status == "queued" and second.attempts == 0 and second.error_code == ""
    assert second.locked_until is None  # released for the retry


def test_the_account_bucket_is_used_only_when_the_number_buckets_could_exceed_it(settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["phone-number-id-" + "a" * 32, "phone-number-id-" + "b" * 32]
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE, settings.RATE_LIMIT_WHATSAPP_MEDIA = 80.0, 100.0

    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 1000.0
    assert [b.key for b in ratelimit.whatsapp_send_buckets("p")] == ["whatsapp-phone#p"]

    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 200.0  # 2 x 80 + 100 = 260 could exceed it
    assert [b.key for b in ratelimit.whatsapp_send_buckets("p")] == ["whatsapp-phone#p", "eum-social-account"]
    assert [b.key for b in ratelimit.whatsapp_media_buckets()] == ["whatsapp-media", "eum-social-account"]


# --- tokens in batches --------------------------------------------------------------------------


def test_a_worker_takes_a_batch_of_tokens_in_one_dynamodb_write_and_spends_them_at_their_rate(settings, dynamodb_calls):
    # given: a 100/s bucket with no burst, batches of 0.1 s (10 tokens)
    settings.RATE_LIMIT_BATCH_SECONDS, settings.RATE_LIMIT_BATCH_MAX = 0.1, 50
    settings.RATE_LIMIT_TOKEN_GRACE_SECONDS = 0.02
    bucket = _bucket(rate=100.0, capacity=1.0)

    # when: 40 sends take a token each
    times = []
    for _ in range(40):
        rate_limit_acquire([bucket], max_wait=2.0)
        times.append(time.monotonic())

    # then: a few DynamoDB writes for 40 tokens (not 40), and the tokens came at 100/s, not faster: a
    # token may be spent up to its grace (0.02 s) late, and one due at once is due from when DynamoDB
    # answered, so 39 intervals take 0.39 s less a few hundredths at most
    writes = dynamodb_calls.operations.count("UpdateItem")
    assert 3 <= writes <= 10, dynamodb_calls.operations
    assert (times[-1] - times[0]) >= 39 / 100.0 * 0.9


def _acquire_batched(key: str, rate: float, capacity: float, count: int, start_at: float, threads: int, results):
    import threading

    RateLimitTracker._connection = None  # a forked child must not reuse the parent's HTTP connections
    bucket = Bucket(key=key, rate=rate, capacity=capacity)
    while time.time() < start_at:
        time.sleep(0.005)
    granted, lock = [], threading.Lock()

    def spend() -> None:
        for _ in range(count // threads):
            rate_limit_acquire([bucket], max_wait=30.0)
            with lock:
                granted.append(time.time())

    workers = [threading.Thread(target=spend) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(granted)


def test_four_processes_taking_batches_never_spend_faster_than_the_bucket_allows(settings):
    # given: a 40/s bucket with a burst of 4, 4 processes x 4 threads spending 40 tokens each, batches of 0.1 s
    settings.RATE_LIMIT_BATCH_SECONDS = 0.1
    rate, capacity, processes, each = 40.0, 4.0, 4, 40
    key = f"test-batches#{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 1.0
    workers = [
        ctx.Process(target=_acquire_batched, args=(key, rate, capacity, each, start_at, 4, results))
        for _ in range(processes)
    ]

    # when
    for worker in workers:
        worker.start()
    spends = sorted(t for _ in workers for t in results.get(timeout=90))
    for worker in workers:
        worker.join(timeout=10)

    # then: every token spent once, within capacity + rate x t in every window (one of tolerance for
    # the time between the spend and its timestamp), and at nearly the full rate
    total = processes * each
    assert len(spends) == total
    busiest = max(sum(1 for t in spends if start <= t < start + 1.0) for start in spends)
    steady_rate = (total - capacity) / (spends[-1] - spends[0])
    print(f"\n{total} tokens, busiest second {busiest}, {steady_rate:.1f}/s after the burst (limit {rate}/s)")
    assert busiest <= capacity + rate + 1
    assert rate * 0.6 <= steady_rate <= rate * 1.05  # the floor: not needlessly slow on a busy 2-CPU host


def test_tokens_taken_but_not_spent_expire_with_their_time(settings, dynamodb_calls):
    # given: a batch of 10 tokens taken by one send, the other 9 held by the process
    settings.RATE_LIMIT_BATCH_SECONDS, settings.RATE_LIMIT_TOKEN_GRACE_SECONDS = 0.1, 0.02
    bucket = _bucket(rate=100.0, capacity=1.0)
    rate_limit_acquire([bucket], max_wait=1.0)
    assert dynamodb_calls.operations.count("UpdateItem") == 1

    # when: nobody spends them within their time
    time.sleep(0.3)
    rate_limit_acquire([bucket], max_wait=1.0)

    # then: the next send does not use a stale token: it takes a new batch from DynamoDB
    assert dynamodb_calls.operations.count("UpdateItem") == 2


def _busiest_second_if_spent_late(times: list[int], late: int) -> int:
    """The most spends one 1-s window can get when tokens are spent as late as allowed (``late`` µs after
    their time): those due within [t, t + 1 s + late) all fit in [t + late, t + 1 s + late)."""
    return max(sum(1 for u in times if t <= u < t + 1_000_000 + late) for t in times)


def test_a_token_spent_at_the_end_of_its_grace_never_puts_a_second_above_one_by_one_taking(settings):
    # given: WhatsApp's 80/s per number with its 0.02-s burst (capacity 1.6: at most 81 in any second
    # one by one), and a grace setting longer than that burst
    settings.RATE_LIMIT_BURST_SECONDS, settings.RATE_LIMIT_TOKEN_GRACE_SECONDS = 0.02, 0.05
    bucket = Bucket.per_second(f"test-grace#{uuid.uuid4().hex}", 80.0)
    grace = ratelimit._grace(bucket)

    # when: a process takes a first token (the bucket was full), then 3 s of tokens in two batches
    first, _ = ratelimit.take_batch(bucket, 1, grace=grace)
    times, _ = ratelimit.take_batch(bucket, 200, lookahead=1.5, grace=grace)
    more, _ = ratelimit.take_batch(bucket, 200, lookahead=1.5 + (times[-1] - times[0]) / 1e6, grace=grace)
    times += more

    # then: even if the first tokens of a second are spent as late as allowed, that second holds no more
    # than one-by-one taking allows (50 ms of grace let it hold 85: 1.06 of the limit)
    assert len(times) > 100
    one_by_one = math.floor(bucket.capacity + bucket.rate)
    assert _busiest_second_if_spent_late(times, ratelimit._lateness(bucket)) <= one_by_one == 81
    # and a slow bucket without a burst still lets its tokens be a little late
    assert ratelimit._grace(Bucket.per_second("sms", 5.0)) == 0.05


def test_a_worker_takes_no_more_tokens_than_it_has_sends_for(settings):
    # given: batches of 0.1 s at 100/s (10 tokens), and a chunk with 3 sends left on this bucket
    settings.RATE_LIMIT_BATCH_SECONDS, settings.RATE_LIMIT_BATCH_MAX = 0.1, 50
    bucket = _bucket(rate=100.0, capacity=1.0)

    # when: its 3 sends take their tokens, each saying how many are left
    for left in (3, 2, 1):
        rate_limit_acquire([bucket], max_wait=2.0, demand=left)

    # then: no token is left over to expire unspent (a full batch would have left 7)
    assert not ratelimit._held.tokens.get(bucket)
    assert ratelimit._held.in_hand.get(bucket, 0) == 0


def test_a_held_token_that_would_expire_before_the_others_are_due_is_swapped_for_a_fresher_one():
    # given: a number's bucket holding an old token (just within its lateness) and a fresh one, and
    # the account's bucket giving a token due a little later (as after a joint refill)
    number, account = Bucket.per_second(f"n-{uuid.uuid4()}", 80.0), Bucket.per_second(f"a-{uuid.uuid4()}", 1000.0)
    now = ratelimit._now()
    old, fresh, later = now - ratelimit._lateness(number) + 1_000, now + 2_000, now + 5_000
    ratelimit._held.add(number, [fresh])

    # when: the tokens of one send are made spendable together
    taken = ratelimit._spendable_together([(number, old), (account, later)])

    # then: the number's token is the fresh one (the old would have expired by the account's time),
    # counted as wasted; each token is spent within its own lateness
    assert taken == [(number, fresh), (account, later)]
    assert ratelimit._held.wasted[number] == 1
    assert all(later <= when + ratelimit._lateness(bucket) for bucket, when in taken)


def test_without_a_fresher_token_the_old_one_stays_and_the_send_takes_new_ones():
    number, account = Bucket.per_second(f"n-{uuid.uuid4()}", 80.0), Bucket.per_second(f"a-{uuid.uuid4()}", 1000.0)
    now = ratelimit._now()
    old, later = now - ratelimit._lateness(number) + 1_000, now + 5_000

    assert ratelimit._spendable_together([(number, old), (account, later)]) == [(number, old), (account, later)]
