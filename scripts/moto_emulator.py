"""moto_server, with each DynamoDB request applied atomically.

Real DynamoDB applies every conditional write atomically; the platform relies on that for tier
counters, rate-limit buckets and de-duplication claims. moto's in-memory backend takes no lock, so
two concurrent UpdateItem calls can both pass the same condition (seen: 13 "successful" conditional
increments against a limit of 12). Serialising DynamoDB requests gives the emulator the atomicity of
the real service; other services (SQS long polls among them) stay concurrent.

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
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class SerialDynamoDB:
    """WSGI middleware: one DynamoDB request at a time (they take a millisecond or so)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # Consume the whole response inside the lock: the backend work happens lazily.
                chunks = list(self.app(environ, start_response))
            return chunks
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server does: moto builds some URLs with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto_cloudformation.install()  # deploy/*.yaml deploy on the emulator as on AWS (TTL, subscriptions, ...)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
