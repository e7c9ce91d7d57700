"""Cross-cutting REST API pieces."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from wecare.errors import PlatformError, retry_after_header


def exception_handler(exc, context):
    """DRF's handler, plus: a PlatformError answers ``{"code", "detail"}`` with its own status (the
    one rendering of our errors in the API), and a refused permission says why in the audit trail."""
    if isinstance(exc, PlatformError):
        response = Response(exc.as_response_body(), status=exc.http_status)
        if exc.http_status == 503:
            response["Retry-After"] = retry_after_header(exc)
        return response
    response = drf_exception_handler(exc, context)
    request = context.get("request")
    if request is not None and isinstance(exc, (exceptions.PermissionDenied, exceptions.NotAuthenticated)):
        request._request.audit_denial_reason = str(exc.detail)
    return response
