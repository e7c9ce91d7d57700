"""Exactly once: SNS delivers at least once and Meta resends, so one wamid reaches several workers at
the same moment. Real PostgreSQL (transactional tests, one connection per thread) and DynamoDB on
moto_server."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from contacts.models import Contact
from messaging import claims, inbound
from messaging.claims import ClaimBusy, InboundClaim
from messaging.inbound import messages as inbound_messages
from messaging.models import InboundEvent, Message
from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sns_setup", "clean_claims")]

COPIES = 10


def _events(wamid: str, copies: int, *, text: str = "hello") -> list[InboundEvent]:
    """``copies`` stored SNS notifications (different SNS ids) that carry the same WhatsApp message."""
    envelope = eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": text}}))
    events = []
    for _ in range(copies):
        body = sns_notification(envelope)
        events.append(
            InboundEvent.objects.create(sns_message_id=body["MessageId"], topic_arn=body["TopicArn"], body=body)
        )
    return events


def _process_concurrently(events: list[InboundEvent]) -> list[str]:
    """Process every event in its own thread, all released at the same instant. Returns outcomes."""
    barrier = threading.Barrier(len(events))
    outcomes: list[str] = [""] * len(events)

    def work(index: int, event_id) -> None:
        try:
            barrier.wait(timeout=30)
            summary = inbound.inbound_event_process(event_id=event_id)
            outcomes[index] = "stored" if summary.stored else "duplicate"
        except ClaimBusy:
            outcomes[index] = "busy"
        except Exception as exc:  # a failure the test should see, not a silent thread death
            outcomes[index] = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, e.pk)) for i, e in enumerate(events)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_ten_concurrent_copies_of_one_message_store_exactly_one(caplog):
    wamid = f"wamid.concurrent-{uuid.uuid4().hex}"
    events = _events(wamid, COPIES)

    outcomes = _process_concurrently(events)

    assert outcomes.count("stored") == 1, outcomes
    assert set(outcomes) <= {"stored", "duplicate", "busy"}, outcomes
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1
    assert Contact.objects.count() == 1
    # The copies that found the claim busy are retried by their task; then they are duplicates.
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome == "busy":
            assert inbound.inbound_event_process(event_id=event.pk).duplicates == [wamid]
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    assert Message.objects.count() == 1
    assert InboundClaim.get(wamid).state == claims.DONE


def test_without_claims_the_unique_constraint_alone_still_stores_one(monkeypatch):
    # As if every claim had expired: all ten workers go for the database at once.
    monkeypatch.setattr(claims, "claim_take", lambda wamid, **kw: claims.Claim(wamid, uuid.uuid4().hex))
    monkeypatch.setattr(claims, "claim_done", lambda claim: None)
    wamid = f"wamid.constraint-{uuid.uuid4().hex}"

    outcomes = _process_concurrently(_events(wamid, COPIES))

    assert outcomes.count("stored") == 1, outcomes
    assert outcomes.count("duplicate") == COPIES - 1, outcomes
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1
    assert Contact.objects.count() == 1


def _claim(wamid: str, *, lease_until: datetime, state: str = claims.PROCESSING) -> None:
    InboundClaim(
        wamid,
        owner="a-worker-that-died",
        state=state,
        lease_until=int(lease_until.timestamp()),
        expires_at=datetime.now(UTC) + claims.CLAIM_TTL,
    ).save()


def test_a_copy_that_finds_a_live_claim_waits_and_is_not_skipped():
    wamid = f"wamid.busy-{uuid.uuid4().hex}"
    (event,) = _events(wamid, 1)
    _claim(wamid, lease_until=datetime.now(UTC) + timedelta(minutes=5))

    with pytest.raises(ClaimBusy):
        inbound.inbound_event_process(event_id=event.pk)

    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING
    assert not Message.objects.exists()


def test_a_claim_left_by_a_worker_that_died_is_taken_over_once_its_lease_ran_out():
    wamid = f"wamid.dead-{uuid.uuid4().hex}"
    (event,) = _events(wamid, 1)
    _claim(wamid, lease_until=datetime.now(UTC) - timedelta(seconds=1))

    summary = inbound.inbound_event_process(event_id=event.pk)

    assert summary.stored == [wamid]
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1
    assert InboundClaim.get(wamid).state == claims.DONE


def test_a_worker_that_died_after_storing_leaves_nothing_for_the_next_copy_to_duplicate():
    wamid = f"wamid.half-{uuid.uuid4().hex}"
    first, second = _events(wamid, 2)
    # The first worker stored the message, then died before marking its claim done.
    original_done = claims.claim_done

    def die(claim):
        raise SystemExit("worker killed")

    claims.claim_done = die
    try:
        with pytest.raises(SystemExit):
            inbound.inbound_event_process(event_id=first.pk)
    finally:
        claims.claim_done = original_done
    # (A real kill would not release the claim either: keep it, with its lease run out.)
    _claim(wamid, lease_until=datetime.now(UTC) - timedelta(seconds=1))
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1

    summary = inbound.inbound_event_process(event_id=second.pk)

    assert summary.duplicates == [wamid]
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1


def test_a_failure_before_storing_releases_the_claim_so_the_retry_stores_the_message(monkeypatch):
    wamid = f"wamid.retry-{uuid.uuid4().hex}"
    (event,) = _events(wamid, 1)
    real_store = inbound_messages._message_store
    calls = {"n": 0}

    def flaky_store(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return real_store(**kwargs)

    monkeypatch.setattr(inbound_messages, "_message_store", flaky_store)

    with pytest.raises(ConnectionError):
        inbound.inbound_event_process(event_id=event.pk)
    with pytest.raises(InboundClaim.DoesNotExist):
        InboundClaim.get(wamid)  # released at once: the retry does not wait for the lease
    started = time.monotonic()
    assert inbound.inbound_event_process(event_id=event.pk).stored == [wamid]
    assert time.monotonic() - started < 5
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1


def test_after_the_claim_expired_a_late_replay_still_stores_nothing_twice():
    wamid = f"wamid.late-{uuid.uuid4().hex}"
    first, replay = _events(wamid, 2)
    inbound.inbound_event_process(event_id=first.pk)
    InboundClaim.get(wamid).delete()  # DynamoDB's TTL removed it after 24 hours

    summary = inbound.inbound_event_process(event_id=replay.pk)

    assert summary.duplicates == [wamid]
    assert Message.objects.filter(whatsapp_message_id=wamid).count() == 1


def test_claims_expire_by_ttl_a_day_after_they_were_taken():
    wamid = f"wamid.ttl-{uuid.uuid4().hex}"
    (event,) = _events(wamid, 1)

    inbound.inbound_event_process(event_id=event.pk)

    item = InboundClaim.get(wamid)
    assert InboundClaim.Meta.ttl_attribute == "expires_at"
    assert abs((item.expires_at - datetime.now(UTC)) - timedelta(hours=24)) < timedelta(minutes=1)
    raw = InboundClaim._get_connection().get_item(wamid)["Item"]["expires_at"]
    assert "N" in raw  # TTL needs a Number of epoch seconds
