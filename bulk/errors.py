"""Errors of the bulk layer. Each carries a stable code the API returns beside the readable message."""

from __future__ import annotations

from wecare.errors import PlatformError


class BulkError(PlatformError):
    """Base: ``code`` is stable (clients switch on it), the message is for people."""

    code = "BULK_ERROR"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message, code=code or None, details=details)


class BulkInputError(BulkError):
    """The request itself is wrong (bad recipients, bad CSV, bad message fields)."""

    code = "INVALID_REQUEST"


class BulkStateError(BulkError):
    """The job is not in a state that allows this action (e.g. resume a completed job)."""

    code = "INVALID_STATE"
    http_status = 409


class BulkConfirmationError(BulkError):
    """The confirmation does not match the pre-flight's will-send count."""

    code = "CONFIRMATION_MISMATCH"


class BulkTierError(BulkError):
    """A WhatsApp job would open more business-initiated conversations than the tier has left."""

    code = "TIER_LIMIT"
    http_status = 422
