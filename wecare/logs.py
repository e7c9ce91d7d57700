"""Structured logs: one JSON object per line, correlation ids, and masking of personal data and secrets.

Every process (web, Celery workers, beat, management commands) logs through settings.LOGGING, whose
handler carries two filters and one formatter from here:

- ``ContextFilter`` adds the ids bound to the current request or task (``log_bind`` / ``log_context``):
  requestId, taskId, messageId, bulkJobId, contactId, eventId, userId. They live in a ContextVar, so
  threads and concurrent requests never see each other's ids.
- ``MaskingFilter`` renders the message and removes what must never be in a log: phone numbers and
  email addresses (masked, the last digits / the domain kept for support), message bodies inside
  logged provider requests, bearer tokens, JWTs and ``token=`` / ``secret=`` / ``password=`` values.
  It runs on every record of every level in every environment: a log line is copied far and wide.
- ``JsonFormatter`` (python-json-logger): time, level, logger, message, the ids, any ``extra=`` fields
  and, for an exception, ``stackTrace`` (masked too).

A request's id comes from the ``X-Request-ID`` header when it is well formed (the load balancer's
trace id), else a new one; it is returned in the response header and travels with every Celery task
the request enqueues (message header ``wecare_request_id``), then with the tasks those enqueue.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# Context keys (snake_case in code) and their names in a JSON log line.
FIELDS = {
    "request_id": "requestId",
    "task_id": "taskId",
    "message_id": "messageId",
    "bulk_job_id": "bulkJobId",
    "contact_id": "contactId",
    "event_id": "eventId",
    "chunk_id": "chunkId",
    "user_id": "userId",
}
REQUEST_ID_HEADER = "X-Request-ID"
CELERY_HEADER = "wecare_request_id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:=/+-]{8,128}$")

# The dict is never mutated in place (log_bind copies it), so the shared empty default is safe.
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("wecare_log_context", default={})  # noqa: B039


def log_ids() -> dict[str, str]:
    """The ids bound now (snake_case keys)."""
    return dict(_context.get())


def log_bind(**ids: Any) -> None:
    """Add ids to the current context (None or "" leaves a key out)."""
    current = dict(_context.get())
    for key, value in ids.items():
        if key not in FIELDS:
            raise ValueError(f"unknown log id {key!r}: use one of {', '.join(FIELDS)}")
        if value not in (None, ""):
            current[key] = str(value)
    _context.set(current)


def log_reset(ids: dict[str, str] | None = None) -> contextvars.Token:
    return _context.set(dict(ids or {}))


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Bind ids for the duration of a block, then restore what was bound before."""
    token = _context.set(dict(_context.get()))
    try:
        log_bind(**ids)
        yield
    finally:
        _context.reset(token)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is well formed (no spaces, no control characters), else a new one."""
    if header and _VALID_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


# --- Masking -----------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
# Candidates for a phone number: "+" and 8-15 digits (E.164), or a bare run of 11-15 digits (a WhatsApp
# wa_id); _mask_phone checks the neighbours so ids, timestamps and ARNs are left alone.
_DIGITS = re.compile(r"\+?\d{8,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w\-.~+/=]{8,}")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
# The keyword alone, not "[\w-]*keyword": a leading wildcard makes the scan quadratic in the line's length.
_SECRET_VALUE = re.compile(
    r"(?i)(token|secret|password|passwd|authorization|signature|api[_-]?key|cookie)([\"']?\s*[:=]\s*[\"']?)"
    r"([^\"'\s,&}]+)"
)
# Bodies inside a logged provider request (DRY_RUN logs the exact request): the value of these keys.
_BODY = re.compile(
    r"(\"(?:body|MessageBody|Data|caption|html|content|text|Text|Html|Subject)\"\s*:\s*)\"((?:[^\"\\]|\\.)*)\""
)
_NOT_BEFORE_BARE = frozenset("+-/.")
_NOT_AFTER_BARE = frozenset("-/")


def _mask_phone(match: re.Match) -> str:
    number, text = match.group(0), match.string
    before = text[match.start() - 1] if match.start() else " "
    after = text[match.end()] if match.end() < len(text) else " "
    digits = len(number) - (1 if number[0] == "+" else 0)
    if after.isalnum() or after == "_" or before.isalnum() or before == "_":
        return number  # part of a longer token: an id, a hash, a file name
    if number[0] == "+":
        return f"+***{number[-4:]}" if 8 <= digits <= 15 else number
    if before in _NOT_BEFORE_BARE or after in _NOT_AFTER_BARE or not 11 <= digits <= 15:
        return number  # part of a uuid, a path or a version
    return f"***{number[-4:]}"


def mask(text: str) -> str:
    """The text without phone numbers, email addresses, message bodies or secrets.

    Each pattern runs only when a cheap test says it may match: this filter sees every log line.
    """
    if not text:
        return text
    if '"' in text:
        text = _BODY.sub(lambda m: f'{m.group(1)}"[{len(m.group(2))} chars]"', text)
    if "eyJ" in text:
        text = _JWT.sub("[jwt]", text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    if any(word in lowered for word in _SECRET_WORDS):
        text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _DIGITS.sub(_mask_phone, text)


_SECRET_WORDS = ("token", "secret", "passw", "authorization", "signature", "key", "cookie")


class MaskingFilter(logging.Filter):
    """Renders the message once and masks it (and string extras); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_wecare_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep what we can, masked
            message = f"{record.msg} {record.args}"
        record.msg = mask(message)
        record.args = None
        # Only the extra= fields (a set difference in C; most records have none).
        for key in record.__dict__.keys() - _NOT_EXTRAS:
            value = record.__dict__[key]
            if isinstance(value, str) and not key.startswith("_"):
                record.__dict__[key] = mask(value)
        record._wecare_masked = True
        return True


_RECORD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_SAFE_EXTRAS = set(FIELDS)
_NOT_EXTRAS = frozenset(_RECORD_ATTRS | _SAFE_EXTRAS)


class ContextFilter(logging.Filter):
    """Adds the bound ids to the record (as its attributes, so both formatters see them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, ids, extras, stackTrace."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "exc_info": "stackTrace"})
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return mask(super().formatException(ei))

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        for key, name in FIELDS.items():
            if key in log_record:
                # An id the line names itself (extra=) wins over the one bound to the context.
                log_record.setdefault(name, log_record.pop(key))
        log_record.pop("_wecare_masked", None)
        log_record.pop("taskName", None)
        return log_record


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal (LOG_FORMAT=console): the JSON fields as key=value after the message."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{FIELDS[k]}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None))
        return f"{line} [{ids}]" if ids else line

    def formatException(self, ei) -> str:  # noqa: N802
        return mask(super().formatException(ei))


# --- Celery: the request id travels with the task; the task binds its ids --------------------------

ID_ARGUMENTS = ("message_id", "event_id", "chunk_id", "contact_id")


def celery_before_publish(headers: dict | None = None, **kwargs) -> None:
    """Stamp the current request id (if any) on every task message this process enqueues."""
    request_id = _context.get().get("request_id")
    if request_id and headers is not None and CELERY_HEADER not in headers:
        headers[CELERY_HEADER] = request_id


def _task_request_id(task) -> str:
    request = task.request
    value = getattr(request, CELERY_HEADER, None) or (getattr(request, "headers", None) or {}).get(CELERY_HEADER)
    return value if isinstance(value, str) and _VALID_REQUEST_ID.match(value) else ""


def _task_ids(task, args, kwargs) -> dict[str, Any]:
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    return {name: bound.arguments[name] for name in ID_ARGUMENTS if name in bound.arguments}


_task_tokens: dict[str, contextvars.Token] = {}


def celery_task_prerun(task_id=None, task=None, args=None, kwargs=None, **_) -> None:
    # A task run in the caller's process (eager) keeps the caller's request id; a worker's gets it
    # from the message header. Either way the task starts from its own ids, restored after it.
    request_id = _task_request_id(task) or _context.get().get("request_id")
    _task_tokens[task_id] = _context.set({})
    log_bind(task_id=task_id, request_id=request_id, **_task_ids(task, args, kwargs))


def celery_task_postrun(task_id=None, **_) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is None:
        log_reset()
        return
    try:
        _context.reset(token)
    except ValueError:  # created in another context (cannot happen in a worker): start clean
        log_reset()


def celery_setup_logging(**_) -> None:
    """Celery must not replace Django's LOGGING (JSON on stderr): connecting this receiver is enough."""
