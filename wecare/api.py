"""Cross-cutting REST API pieces."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, plus: a refused permission says why in the audit trail."""
    response = drf_exception_handler(exc, context)
    request = context.get("request")
    if request is not None and isinstance(exc, (exceptions.PermissionDenied, exceptions.NotAuthenticated)):
        request._request.audit_denial_reason = str(exc.detail)
    return response
