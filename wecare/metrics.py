"""CloudWatch metrics in the embedded metric format (EMF), written on the log stream.

Why EMF: a metric costs one JSON line on stderr, no network call and no background thread; the
container's log driver ships it to /base-wecare-digital/common, where CloudWatch Logs extracts the
metric (the ``x-amzn-logs-format`` header is optional). A process that dies loses nothing it had
already written, which in-process aggregation flushed once a minute would. bench/metrics_emit.py
measures the cost per message (target < 0.1 ms).

Namespace ``WECARE.DIGITAL``; every metric carries the dimension Environment, plus the ones named
in the catalogue below (the alarms of deploy/ use exactly these names and dimensions).

Call sites use one line: ``metrics.emit("MessagesSent", channel="whatsapp")``, or the timer
``with metrics.timed("ProviderLatency", channel=...)``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

NAMESPACE = "WECARE.DIGITAL"
LOGGER_NAME = "wecare.metrics.emf"

COUNT, SECONDS, MILLISECONDS, PERCENT, PER_SECOND = "Count", "Seconds", "Milliseconds", "Percent", "Count/Second"

# Metric name -> (unit, dimensions besides Environment). Emitting anything else is a bug: it raises.
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "MessagesSent": (COUNT, ("Channel",)),
    "MessagesDelivered": (COUNT, ("Channel",)),
    "MessagesRead": (COUNT, ("Channel",)),
    "MessagesFailed": (COUNT, ("Channel",)),
    "MessagesRefused": (COUNT, ("Channel", "Reason")),
    "ProviderLatency": (MILLISECONDS, ("Channel",)),
    "InboundEventsProcessed": (COUNT, ()),
    "InboundEventsFailed": (COUNT, ()),
    "BulkJobDuration": (SECONDS, ("Channel",)),
    "BulkJobThroughput": (PER_SECOND, ("Channel",)),
    "BulkRecipientsSent": (COUNT, ("Channel",)),
    "BulkRecipientsFailed": (COUNT, ("Channel",)),
    "QueueDepth": (COUNT, ("Queue",)),
    "QueueOldestAge": (SECONDS, ("Queue",)),
    "TierUsePercent": (PERCENT, ("PhoneNumberId",)),
    "RateLimitWaits": (COUNT, ("Bucket",)),
    "ApiRequests": (COUNT, ()),
    "Api5xx": (COUNT, ()),
    "WorkerErrors": (COUNT, ()),
    "AISuggestions": (COUNT, ("Outcome",)),
    "Suppressions": (COUNT, ("Channel", "Reason")),
    "LinkClicks": (COUNT, ()),  # people following short links (preview fetchers not counted)
    "FormSubmissions": (COUNT, ("Outcome",)),
}

_logger = logging.getLogger(LOGGER_NAME)


def _env() -> str:
    # Read each time (a cached attribute of Django's settings): a test that changes ENVIRONMENT
    # must not leave its name on the metrics of the tests after it.
    from django.conf import settings

    return settings.ENVIRONMENT


def _snake(name: str) -> str:
    """PhoneNumberId -> phone_number_id: the keyword a call site passes for a dimension."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def emf_record(name: str, value: float, *, timestamp_ms: int | None = None, **dimensions: str) -> dict:
    """The EMF object of one metric value (the ``_aws`` envelope, dimension values and the value)."""
    try:
        unit, names = CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}: add it to wecare.metrics.CATALOGUE") from None
    keys = {_snake(k): k for k in names}
    values = {"Environment": _env()}
    for key, dim_value in dimensions.items():
        if key not in keys:
            raise ValueError(f"metric {name} has no dimension {key!r} (it has {', '.join(names) or 'none'})")
        values[keys[key]] = str(dim_value or "unknown")[:250]  # CloudWatch: dimension values 1-255 chars
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"metric {name} needs dimension(s) {', '.join(missing)}")
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Environment", *names]],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            ],
        },
        **values,
        name: value,
    }


# (environment, name, dimensions) -> the EMF line around its two variable parts (timestamp, value), built once.
_templates: dict[tuple, tuple[str, str]] = {}
MAX_TEMPLATES = 2000  # dimension values come from small sets (channels, queues, numbers, codes)


def _template(name: str, dimensions: dict[str, str]) -> tuple[str, str]:
    key = (_env(), name, tuple(sorted(dimensions.items())))
    template = _templates.get(key)
    if template is None:
        record = emf_record(name, 0, timestamp_ms=0, **dimensions)  # validates name and dimensions
        aws = json.dumps(record.pop("_aws")["CloudWatchMetrics"], separators=(",", ":"))
        del record[name]
        members = json.dumps(record, separators=(",", ":"))[1:-1]
        template = (
            '{"_aws":{"Timestamp":',
            f',"CloudWatchMetrics":{aws}}},{members},{json.dumps(name)}:',
        )
        if len(_templates) >= MAX_TEMPLATES:
            _templates.clear()
        _templates[key] = template
    return template


def emit(name: str, value: float = 1, **dimensions: str) -> None:
    """Write one metric value (``channel=``, ``reason=``, ``queue=``… as the catalogue says).

    Never raises for an I/O problem: a metric must not fail the work it measures. A wrong name or
    dimension raises ValueError (a programming error, caught by the tests).
    """
    head, middle = _template(name, dimensions)
    value = value if type(value) is int else float(value)  # a bool or a Decimal is not a JSON number
    if not math.isfinite(value):
        raise ValueError(f"metric {name}: {value!r} is not a finite number")
    if _logger.isEnabledFor(logging.INFO):
        _logger.info(f"{head}{int(time.time() * 1000)}{middle}{value!r}}}")


@contextmanager
def timed(name: str, **dimensions: str) -> Iterator[None]:
    """Emit the block's duration in milliseconds (also when it raises: a failed call took time too)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        emit(name, round((time.perf_counter() - start) * 1000, 3), **dimensions)


class EmfFormatter(logging.Formatter):
    """The EMF line exactly as built: CloudWatch Logs parses it only if the line is the JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


# --- One-line hooks for the places that own an event --------------------------------------------

STATUS_METRICS = {"delivered": "MessagesDelivered", "read": "MessagesRead", "failed": "MessagesFailed"}


def message_status(status: str, *, channel: str) -> None:
    """A status event moved an outbound message forward (delivered, read or failed)."""
    if status in STATUS_METRICS:
        emit(STATUS_METRICS[status], channel=channel)


def bulk_job_finished(*, channel: str, started_at, completed_at, sent: int, failed: int) -> None:
    """Duration, throughput and outcome counts of a bulk job that just finished."""
    seconds = max(0.0, (completed_at - started_at).total_seconds()) if started_at and completed_at else 0.0
    emit("BulkJobDuration", round(seconds, 3), channel=channel)
    emit("BulkJobThroughput", round(sent / seconds, 3) if seconds > 0 else float(sent), channel=channel)
    emit("BulkRecipientsSent", sent, channel=channel)
    emit("BulkRecipientsFailed", failed, channel=channel)
