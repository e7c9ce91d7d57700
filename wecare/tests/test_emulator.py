"""The local AWS emulator (scripts/moto_emulator.py) behaves like the real SQS under concurrency."""

from __future__ import annotations

import threading
import time
import uuid

from wecare import aws


def _queue(sqs) -> str:
    return sqs.create_queue(QueueName=f"emulator-{uuid.uuid4().hex[:12]}")["QueueUrl"]


def test_a_long_poll_holds_up_no_other_sqs_request_and_a_send_wakes_it():
    sqs = aws.client("sqs")
    queue = _queue(sqs)
    received: dict[str, float] = {}

    def long_poll():
        started = time.monotonic()
        answer = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MaxNumberOfMessages=1)
        received["count"] = len(answer.get("Messages", []))
        received["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting now
    started = time.monotonic()
    sqs.send_message(QueueUrl=queue, MessageBody="wake up")
    send_seconds = time.monotonic() - started
    poller.join(timeout=10)
    assert send_seconds < 0.5  # not queued behind the waiting poll
    assert received["count"] == 1
    assert received["seconds"] < 3  # woken by the send, not by its 5 s timeout


def test_concurrent_sends_receives_and_deletes_on_one_queue_lose_nothing_and_never_fail():
    sqs = aws.client("sqs")
    queue = _queue(sqs)
    sent = [f"m{i}" for i in range(400)]
    received: list[str] = []
    errors: list[Exception] = []
    done_sending = threading.Event()

    def produce(bodies: list[str]):
        for start in range(0, len(bodies), 10):
            batch = bodies[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(batch)]
            )

    def consume():
        idle_after_sending = 0
        while idle_after_sending < 2:
            try:
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                received.extend(m["Body"] for m in messages)
                if messages:
                    entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
                    sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
                elif done_sending.is_set():
                    idle_after_sending += 1
            except Exception as error:  # a 500 from the emulator, say
                errors.append(error)
                return

    consumers = [threading.Thread(target=consume) for _ in range(8)]
    producers = [threading.Thread(target=produce, args=(sent[k::2],)) for k in range(2)]
    for thread in consumers + producers:
        thread.start()
    for thread in producers:
        thread.join()
    done_sending.set()
    for thread in consumers:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(set(received)) == sorted(sent)
