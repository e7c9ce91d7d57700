"""Read what the configured log handlers write (settings.LOGGING), as the container's log driver would."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from wecare.logs import JsonFormatter
from wecare.metrics import LOGGER_NAME, EmfFormatter


class Captured:
    def __init__(self, logs: io.StringIO, emf: io.StringIO):
        self._logs, self._emf = logs, emf

    def lines(self) -> list[str]:
        return [line for line in self._logs.getvalue().splitlines() if line]

    def records(self) -> list[dict]:
        """Every log line parsed; a line that is not one JSON object fails the test here."""
        return [json.loads(line) for line in self.lines()]

    def emf(self) -> list[dict]:
        return [json.loads(line) for line in self._emf.getvalue().splitlines() if line]

    def metric_values(self, name: str, **dimensions: str) -> list[float]:
        return [
            record[name]
            for record in self.emf()
            if name in record and all(record.get(k) == v for k, v in dimensions.items())
        ]


@contextmanager
def captured_logs() -> Iterator[Captured]:
    """Point the root's handlers and the EMF handler at buffers for the duration of a block."""
    logs, emf = io.StringIO(), io.StringIO()
    swapped = []
    for handler in logging.getLogger().handlers:
        # Only the handler settings.LOGGING made (pytest adds its own capture handlers to the root).
        if isinstance(handler, logging.StreamHandler) and isinstance(handler.formatter, JsonFormatter):
            swapped.append((handler, handler.setStream(logs)))
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, logging.StreamHandler) and isinstance(handler.formatter, EmfFormatter):
            swapped.append((handler, handler.setStream(emf)))
    if len(swapped) < 2:
        raise AssertionError("settings.LOGGING has no stream handler for the logs or for the metrics")
    try:
        yield Captured(logs, emf)
    finally:
        for handler, previous in swapped:
            handler.setStream(previous)
