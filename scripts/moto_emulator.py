"""moto_server, with each DynamoDB request applied atomically.

Real DynamoDB applies every conditional write atomically; the platform relies on that for tier
counters, rate-limit buckets and de-duplication claims. moto's in-memory backend takes no lock, so
two concurrent UpdateItem calls can both pass the same condition (seen: 13 "successful" conditional
increments against a limit of 12). Serialising DynamoDB requests gives the emulator the atomicity of
the real service.

moto's SQS backend takes no lock either: a ReceiveMessage iterating a queue's in-flight set while a
DeleteMessage on another thread removes from it fails with "Set changed size during iteration" (an
HTTP 500; seen under a 2,000-message benchmark), and a delete rebuilding the message list can drop a
message sent at the same moment. SQS requests are therefore serialised too, except while a long poll
waits for messages: the lock is released for the wait, so long polls stay concurrent and a send can
wake them, as on the real service.

It also completes moto's CloudFormation for the templates of deploy/ (scripts/moto_cloudformation.py).

Usage: python scripts/moto_emulator.py [-H HOST] [-p PORT]   (the same flags as moto_server)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import moto_cloudformation  # scripts/, next to this file
from moto.core.utils import unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import Queue, SQSBackend
from werkzeug.serving import run_simple

SQS_LOCK = threading.Lock()
_held = threading.local()  # whether this request thread holds SQS_LOCK


def _wait_for_messages_unlocked(wait):
    """moto's long-poll wait (Queue.wait_for_messages), run with SQS_LOCK released."""

    def wait_for_messages(queue, timeout):
        if not getattr(_held, "sqs", False):
            return wait(queue, timeout)
        SQS_LOCK.release()
        try:
            return wait(queue, timeout)
        finally:
            SQS_LOCK.acquire()

    return wait_for_messages


def _within_retention(backend, queue_name: str, message) -> bool:
    """moto's retention check per received message, without its cost: moto reads the period through
    get_queue_attributes, which recounts every message of the queue (three times), so a receive from
    a queue 2,000 deep cost ~0.1 s of CPU and the emulator, not the platform, set a benchmark's pace."""
    retention = backend.get_queue(queue_name).message_retention_period
    return retention + message.sent_timestamp / 1000 > unix_time()


def _is_sqs(environ) -> bool:
    # The JSON protocol names its target; the query protocol is known by its signature's scope.
    return environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS.") or "/sqs/aws4_request" in environ.get(
        "HTTP_AUTHORIZATION", ""
    )


class SerialRequests:
    """WSGI middleware: one DynamoDB request at a time, one SQS request at a time (each takes a
    millisecond or so; an SQS long poll lets go while it waits)."""

    def __init__(self, app):
        self.app = app
        self.dynamodb_lock = threading.Lock()

    def _serially(self, lock, environ, start_response):
        with lock:
            # Consume the whole response inside the lock: the backend work happens lazily.
            return list(self.app(environ, start_response))

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._serially(self.dynamodb_lock, environ, start_response)
        if _is_sqs(environ):
            _held.sqs = True
            try:
                return self._serially(SQS_LOCK, environ, start_response)
            finally:
                _held.sqs = False
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server does: moto builds some URLs with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto_cloudformation.install()  # deploy/*.yaml deploy on the emulator as on AWS (TTL, subscriptions, ...)
    Queue.wait_for_messages = _wait_for_messages_unlocked(Queue.wait_for_messages)
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialRequests(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
