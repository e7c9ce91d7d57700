"""One correction to kombu's SQS transport, installed by the Celery app (wecare/celery.py).

kombu 5.7.0 (the newest release) reads a failed SQS receive as "no messages": for an HTTP timeout,
a connection error (pycurl's 599) or a 500/502/503 its async client hands the receive callback an
empty *list* (``AsyncAWSQueryConnection._on_list_ready``), "to prevent hanging the Celery worker".
But ``Channel._on_messages_ready`` then calls ``messages.get('Messages')`` on it (earlier releases
tested ``'Messages' in messages``, which an empty list passes), and the worker dies with
``AttributeError: 'list' object has no attribute 'get'`` ("Unrecoverable error"). One SQS hiccup
would stop a worker in production; a 500 from the local emulator stopped one mid-benchmark.

The correction does what kombu meant: such a receive is an empty poll, the loop polls again after
``polling_interval``. A real answer (a dict) goes through kombu's own code unchanged.

While SQS is unreachable that happens every ``polling_interval`` (0.1 s by default) in every worker
process, so the warning is logged once, then at most every ``FAILED_RECEIVE_LOG_SECONDS`` per
queue with the number of failures in between.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

FAILED_RECEIVE_LOG_SECONDS = 60.0
_clock = time.monotonic  # a test moves its own clock

# queue name -> (monotonic time of the last warning, failed receives not logged since)
_failed_receives: dict[str, tuple[float, int]] = {}


def _warn_failed_receive(qname: str) -> None:
    """Warn of a failed receive on ``qname``: the first at once, then at most one a period."""
    now = _clock()
    last = _failed_receives.get(qname)
    if last is not None and now - last[0] < FAILED_RECEIVE_LOG_SECONDS:
        _failed_receives[qname] = (last[0], last[1] + 1)
        return
    since = f" ({last[1]} more since the last warning)" if last is not None and last[1] else ""
    logger.warning("SQS receive on %s failed (timeout or server error); polling again%s", qname, since)
    _failed_receives[qname] = (now, 0)


def install() -> None:
    """Make kombu's SQS channel treat a failed receive as an empty one (idempotent)."""
    from kombu.transport.SQS import Channel

    original = Channel._on_messages_ready
    if getattr(original, "_wecare_tolerant", False):
        return

    def _on_messages_ready(self, queue: Any, qname: str, messages: Any) -> int:
        if not isinstance(messages, dict):
            # kombu's stand-in for a receive that timed out or got a 5xx: nothing was received.
            _warn_failed_receive(qname)
            return 0
        return original(self, queue, qname, messages)

    _on_messages_ready._wecare_tolerant = True  # type: ignore[attr-defined]
    Channel._on_messages_ready = _on_messages_ready
