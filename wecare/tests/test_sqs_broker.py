"""kombu's SQS channel survives a failed receive (wecare.sqs_broker), on the emulator's SQS."""

from __future__ import annotations

import logging

from django.conf import settings
from kombu import Connection
from kombu.asynchronous import Hub
from kombu.asynchronous.aws.connection import AsyncHTTPResponse
from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection
from kombu.asynchronous.http import Request, Response, get_client

import wecare.celery  # noqa: F401  (installs the correction, as every worker does)
from wecare import sqs_broker


def _receive_answered(status: int, channel, queue_url: str):
    """What kombu's own async client hands the receive callback for an HTTP answer with this status."""
    hub = Hub()
    try:
        client = AsyncSQSConnection(channel.sqs(queue=settings.QUEUE_OUTBOUND), http_client=get_client(hub))
        response = AsyncHTTPResponse(Response(Request(queue_url), code=status))
        return client._on_list_ready(None, [], "ReceiveMessage", response)
    finally:
        hub.close()


def test_a_receive_that_got_a_server_error_or_timed_out_is_an_empty_poll_not_a_dead_worker():
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        channel = conn.default_channel
        queue = channel.queue_name_prefix + settings.QUEUE_OUTBOUND
        queue_url = channel._new_queue(queue)
        for status in (500, 503, 504, 599):  # 599: pycurl's connection error or timeout
            answer = _receive_answered(status, channel, queue_url)
            assert answer == []  # kombu 5.7's stand-in for "nothing received"
            assert channel._on_messages_ready(queue_url, queue, answer) == 0  # kombu alone: AttributeError


def test_a_real_answer_still_goes_through_kombus_own_code():
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        channel = conn.default_channel
        queue = channel.queue_name_prefix + settings.QUEUE_OUTBOUND
        queue_url = channel._new_queue(queue)
        assert channel._on_messages_ready(queue_url, queue, {"Messages": []}) == 0
        received = []
        channel.connection._callbacks[queue] = received.append
        message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "e30=", "Attributes": {}}
        assert channel._on_messages_ready(queue_url, queue, {"Messages": [message]}) == 1
        assert len(received) == 1


def test_while_sqs_is_down_the_failed_receive_is_logged_once_then_once_a_period_per_queue(monkeypatch, caplog):
    # given: a clock we move by hand, no failure seen yet
    tenths = [10_000]  # the clock in tenths of a second: exact, unlike adding 0.1
    monkeypatch.setattr(sqs_broker, "_clock", lambda: tenths[0] / 10)
    monkeypatch.setattr(sqs_broker, "_failed_receives", {})
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        channel = conn.default_channel
        queue = channel.queue_name_prefix + settings.QUEUE_OUTBOUND
        queue_url = channel._new_queue(queue)
        answer = _receive_answered(599, channel, queue_url)

        def failures_for(seconds: float) -> None:
            """A failed receive every polling interval (0.1 s) for ``seconds``."""
            for _ in range(round(seconds * 10)):
                assert channel._on_messages_ready(queue_url, queue, answer) == 0
                tenths[0] += 1

        with caplog.at_level(logging.WARNING, logger="wecare.sqs_broker"):
            # when: SQS stays unreachable for 150 s, polled every 0.1 s
            failures_for(150)
            # and: another queue fails too
            assert channel._on_messages_ready(queue_url, "other-queue", answer) == 0

    # then: 1,501 failures, 4 warnings — the first at once, then one a minute with the count between
    warnings = [r.getMessage() for r in caplog.records if r.name == "wecare.sqs_broker"]
    assert warnings == [
        f"SQS receive on {queue} failed (timeout or server error); polling again",
        f"SQS receive on {queue} failed (timeout or server error); polling again (599 more since the last warning)",
        f"SQS receive on {queue} failed (timeout or server error); polling again (599 more since the last warning)",
        "SQS receive on other-queue failed (timeout or server error); polling again",
    ]
