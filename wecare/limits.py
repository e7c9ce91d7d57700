"""Request-size limits, applied before a single byte of the body is read.

Django streams uploads to temporary files and caps form fields (DATA_UPLOAD_MAX_MEMORY_SIZE), but
it would still read a multi-gigabyte upload to disk, and a view reading ``request.body`` reads it
all into memory. This middleware answers 413 from the Content-Length alone: at most
SNS_MAX_BODY_BYTES for the SNS endpoint (SNS sends at most 256 KB) and UPLOAD_MAX_BYTES elsewhere
(the largest file any form takes, a 100 MB WhatsApp document, plus room for the form).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def body_limit(path: str) -> int:
    if path.startswith("/webhooks/sns"):
        return settings.SNS_MAX_BODY_BYTES
    return settings.UPLOAD_MAX_BYTES


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return HttpResponse("Content-Length is not a number.", status=400, content_type="text/plain")
        if length > limit:
            return HttpResponse(
                f"The request is {_megabytes(length)}; the limit here is {_megabytes(limit)}.",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
