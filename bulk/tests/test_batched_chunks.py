"""Bulk chunks sent as batches: crash safety under SIGKILL, consent that stays fresh while a chunk runs,
and what a chunk costs in SQL statements and DynamoDB calls.

The provider is localdev/fake_socialmessaging.py over HTTP in LIVE mode: it records every call, so a
duplicate send is a second SendWhatsAppMessage to the same number, seen where a provider would see it.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulk import execution
from bulk.models import (
    FINAL_RECIPIENT_STATUSES,
    OUTCOME_UNKNOWN,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    JobStatus,
    RecipientStatus,
)
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create
from conftest import wait_until
from contacts.models import ConsentSource, Contact
from contacts.services import contact_set_opt_in, contact_soft_delete
from localdev.fake_socialmessaging import FakeSocialMessaging
from messaging import ratelimit
from messaging.models import Message
from wecare import aws

PHONE_A = "phone-number-id-" + "c" * 32


@pytest.fixture
def fake(monkeypatch, settings):
    """LIVE sends to the local fake of EUM Social (5 ms a call)."""
    with FakeSocialMessaging(latency=0.005) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", server.url)
        aws.reset_clients()
        settings.SEND_MODE = "LIVE"
        settings.WHATSAPP_PHONE_NUMBER_IDS = [PHONE_A]
        settings.BULK_SEND_THREADS = 4
        yield server
    monkeypatch.undo()
    aws.reset_clients()


def _job(user, contacts) -> BulkJob:
    job = bulk_job_create(
        user=user,
        channel="whatsapp",
        message=BulkMessage(origination_phone_number_id=PHONE_A, content="Your report is ready"),
        contact_ids=[str(c.pk) for c in contacts],
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=user, count=job.preflight["willSend"])
    return job


def _sends_per_phone(fake) -> Counter:
    return Counter(call.message["to"] for call in fake.sends)


def _run_chunk_in_child(chunk_id) -> int:
    """Fork a process that runs the chunk (as a bulk worker's pool process would); returns its pid."""
    connections.close_all()  # the child opens its own
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            aws.reset_clients()
            ratelimit.RateLimitTracker._connection = None
            execution.chunk_process(chunk_id)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


@pytest.mark.django_db(transaction=True)
def test_sigkill_of_a_worker_mid_chunk_20_times_gives_no_duplicate_send_and_no_stranded_recipient(
    operator, make_contacts, fake, settings, reset_aws
):
    settings.BULK_CHUNK_LEASE_SECONDS = 2
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 200.0  # a chunk of 40 takes ~0.2 s: a "mid-chunk" to kill in
    rng = random.Random(11)
    unknown_total = 0
    for trial in range(20):
        # given: a one-chunk job of 40, its worker killed after a random number of provider calls
        contacts = make_contacts(40)
        job = _job(operator, contacts)
        chunk = job.chunks.get()
        before = len(fake.sends)
        kill_after = rng.randint(1, 38)
        pid = _run_chunk_in_child(chunk.pk)
        deadline = time.monotonic() + 30
        while len(fake.sends) - before < kill_after and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"trial {trial}: the worker finished before it could be killed"

        # when: its lease expires and the chunk is delivered again (SQS redelivery or the sweeper)
        BulkJobChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        result = execution.chunk_process(chunk.pk)

        # then: nobody was sent twice; nobody is left pending or sending; every SENT one was really sent
        assert result.outcome == "done", trial
        phones = {c.phone for c in contacts}
        per_phone = {p: n for p, n in _sends_per_phone(fake).items() if p in phones}
        assert max(per_phone.values()) == 1, f"trial {trial}: duplicate sends {per_phone}"
        rows = list(BulkRecipient.objects.filter(job=job).select_related("contact"))
        assert {r.status for r in rows} <= set(FINAL_RECIPIENT_STATUSES), trial
        for row in rows:
            if row.status == RecipientStatus.SENT:
                assert per_phone.get(row.contact.phone) == 1, f"trial {trial}: SENT but never sent"
            else:
                assert (row.status, row.error_code) == (RecipientStatus.FAILED, OUTCOME_UNKNOWN), trial
        unknown = sum(1 for r in rows if r.status == RecipientStatus.FAILED)
        # unknown: at most the sends in flight, the group created ahead and the outcomes not yet written
        assert unknown <= 6 * settings.BULK_SEND_THREADS, trial
        unknown_total += unknown
        assert BulkJob.objects.get(pk=job.pk).status == JobStatus.COMPLETED
    print(f"\n20 SIGKILLs: 0 duplicates, 0 stranded, {unknown_total} outcomes unknown in all")


@pytest.mark.django_db(transaction=True)
def test_consent_revoked_during_a_running_chunk_stops_its_unsent_sends_within_one_second(
    operator, make_contacts, fake, settings, reset_aws
):
    # given: a chunk of 100 sending at 20/s (5 s), running in a worker thread
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 20.0
    settings.RATE_LIMIT_BURST_SECONDS = 0.05
    contacts = make_contacts(100)
    job = _job(operator, contacts)
    chunk = job.chunks.get()
    worker = threading.Thread(target=lambda: (execution.chunk_process(chunk.pk), connections.close_all()))
    worker.start()
    wait_until(lambda: len(fake.sends) >= 15, timeout=20, message="the chunk to be sending")

    # when: the last 40 recipients send STOP (opt-out), and 5 others are deleted, committed at `revoked_at`
    stopped = [Contact.objects.get(pk=c.pk) for c in contacts[60:]]
    deleted = [Contact.objects.get(pk=c.pk) for c in contacts[50:55]]
    for contact in stopped:
        contact_set_opt_in(contact=contact, channel="whatsapp", value=False, source=ConsentSource.INBOUND_KEYWORD)
    for contact in deleted:
        contact_soft_delete(contact=contact, actor=operator)
    revoked_at = time.time()
    worker.join(timeout=60)
    assert not worker.is_alive()

    # then: no send to any of them reached the provider later than 1 s after the revocation...
    revoked_phones = {c.phone for c in stopped + deleted}
    late = [call for call in fake.sends if call.message["to"] in revoked_phones and call.at > revoked_at + 1.0]
    assert late == []
    # ...their unsent recipients are SKIPPED with the gate's code, and the others were all sent
    rows = {r.contact_id: r for r in BulkRecipient.objects.filter(job=job)}
    sent_to = {call.message["to"] for call in fake.sends}
    for contact in stopped + deleted:
        row = rows[contact.pk]
        if contact.phone in sent_to:
            assert row.status == RecipientStatus.SENT
        else:
            expected = "OPT_IN_REQUIRED" if contact in stopped else "CONTACT_NOT_FOUND"
            assert (row.status, row.error_code) == (RecipientStatus.SKIPPED, expected)
    skipped = sum(1 for r in rows.values() if r.status == RecipientStatus.SKIPPED)
    assert skipped >= 30  # most of the 45 were still waiting for their turn
    others = [rows[c.pk] for c in contacts[:50] + contacts[55:60]]
    assert {r.status for r in others} == {RecipientStatus.SENT}
    assert len(fake.sends) == len(sent_to)  # nobody twice


@pytest.mark.django_db(transaction=True)
def test_a_chunk_of_100_costs_a_few_statements_and_dynamodb_calls_not_a_dozen_per_message(
    operator, make_contacts, fake, settings, reset_aws, dynamodb_calls
):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE, settings.RATE_LIMIT_BURST_SECONDS = 10_000.0, 1.0  # limits lifted
    contacts = make_contacts(100)
    job = _job(operator, contacts)
    chunk = job.chunks.get()
    dynamodb_calls.operations.clear()

    with CaptureQueriesContext(connections["default"]) as queries:
        result = execution.chunk_process(chunk.pk)

    assert result.by_status == {RecipientStatus.SENT: 100}
    assert Message.objects.filter(contact__in=contacts).count() == 100
    print(f"\nchunk of 100: {len(queries)} SQL statements, {dynamodb_calls.count} DynamoDB calls")
    assert len(queries) <= 150  # the old path: ~13 per message, 1,300
    assert dynamodb_calls.count <= 10  # the old path: 1 per message


def _bulk_queue_depth() -> int:
    from django.conf import settings as django_settings

    prefix = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=prefix + django_settings.QUEUE_BULK)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.django_db(transaction=True)
def test_confirming_a_job_answers_at_once_and_a_worker_queues_its_chunks(operator, make_contacts, reset_aws):
    from bulk.tasks import bulk_job_enqueue_chunks

    # given: a job of 1,500 recipients awaiting confirmation (15 chunks)
    contacts = make_contacts(1500)
    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(content="Your report is ready"),
        contact_ids=[str(c.pk) for c in contacts],
    )
    assert job.status == JobStatus.AWAITING_CONFIRMATION

    # when: it is confirmed
    with CaptureQueriesContext(connections["default"]) as queries:
        started = time.monotonic()
        job = bulk_job_confirm(job_id=job.pk, user=operator, count=1500)
        took = time.monotonic() - started

    # then: the request wrote the job's chunks and queued one message, whatever the job's size
    print(f"\nconfirm: {len(queries)} SQL statements, {took * 1000:.0f} ms")
    assert _bulk_queue_depth() == 1
    assert len(queries) <= 20
    assert job.chunks.count() == 15

    # and the worker that takes that message queues the 15 chunks
    assert bulk_job_enqueue_chunks(str(job.pk)) == 15
    assert _bulk_queue_depth() == 16
    assert set(job.chunks.values_list("status", flat=True)) == {"QUEUED"}
