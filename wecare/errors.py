"""One error vocabulary for the platform: `PlatformError(message, code=..., http_status=..., permanent=...)`.

``code`` is stable (API clients switch on it), the message is for people, ``http_status`` is how the
API and the pages answer it, ``permanent`` says whether trying again later can help. Subclasses set
defaults; any instance may override them. Rendered to HTTP in exactly one way: by
`wecare.api.exception_handler` for the API (``{"code": ..., "detail": ...}``) and by
`wecare.errors.PlatformErrorMiddleware` for the pages (the same status, the error page).
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)


class PlatformError(Exception):
    code: str = "INTERNAL_ERROR"
    http_status: int = 500
    permanent: bool = True

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        http_status: int | None = None,
        permanent: bool | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message or self.code)
        self.message = message or self.code
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        if permanent is not None:
            self.permanent = permanent
        self.details = details or {}

    def as_response_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "detail": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(PlatformError):
    code = "INVALID_REQUEST"
    http_status = 400


class RetryLater(PlatformError):
    """Not now: something we depend on is busy or unavailable (a rate limit, a lease another worker
    holds, storage). ``retry_after`` (seconds, when known) is when to try again; the API and the pages
    send it as the Retry-After header."""

    code = "RETRY_LATER"
    http_status = 503
    permanent = False
    retry_after: float | None = None


class StorageUnavailable(RetryLater):
    """Our own S3 bucket or table could not be reached: the same 503 in the API and on a page."""

    code = "STORAGE_UNAVAILABLE"


def retry_after_header(exc: PlatformError) -> str:
    """Whole seconds for the Retry-After header: the error's own delay, else 30."""
    seconds = getattr(exc, "retry_after", None)
    return str(max(1, round(seconds))) if seconds else "30"


def status_for(exc: BaseException) -> int:
    return exc.http_status if isinstance(exc, PlatformError) else 500


class PlatformErrorMiddleware:
    """Pages: an uncaught PlatformError answers with its own status and words (never a bare 500)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, PlatformError):
            return None
        if exc.http_status >= 500:
            logger.warning("page %s answered %s %s: %s", request.path, exc.http_status, exc.code, exc.message)
        response = TemplateResponse(
            request, "platform_error.html", {"code": exc.code, "detail": exc.message}, status=exc.http_status
        )
        if exc.http_status == 503:
            response["Retry-After"] = retry_after_header(exc)
        return response.render()
