from __future__ import annotations

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from messaging.inbound.outbox import inbound_outbox_relay

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Relay stored inbound events (the outbox) to the inbound queue in batches (SQS SendMessageBatch), "
        "in a loop: run one next to the web servers. While the broker is unreachable the events stay "
        "stored and are relayed when it returns. --once relays what is there and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Relay what is waiting, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds between rounds: events gather meanwhile, so messages are few and full.",
        )

    def handle(self, *args, once: bool, interval: float, **options):
        # An event, not a flag: a SIGTERM (a deployment stopping the task) ends the wait between rounds at
        # once, where a sleep would run on for up to the 30-s backoff, past ECS's stop timeout.
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        backoff = interval
        while not stopping.is_set():
            started = time.monotonic()
            close_old_connections()
            try:
                relayed = inbound_outbox_relay(max_seconds=5)
                backoff = interval
            except Exception as exc:  # the broker or the database is down: keep the events, try again
                logger.warning("inbound relay failed, events kept for later: %s", type(exc).__name__)
                relayed = 0
                backoff = min(max(backoff * 2, 1.0), 30.0)
            if once:
                self.stdout.write(f"{relayed} event(s) relayed.")
                return
            stopping.wait(max(0.0, backoff - (time.monotonic() - started)))
