"""kombu's SQS channel survives a failed receive (wecare.sqs_broker), on the emulator's SQS."""

from __future__ import annotations

from django.conf import settings
from kombu import Connection
from kombu.asynchronous import Hub
from kombu.asynchronous.aws.connection import AsyncHTTPResponse
from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection
from kombu.asynchronous.http import Request, Response, get_client

import wecare.celery  # noqa: F401  (installs the correction, as every worker does)


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
