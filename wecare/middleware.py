"""Request correlation and API metrics: the first middleware of the stack."""

from __future__ import annotations

import logging

from wecare import logs, metrics

logger = logging.getLogger("wecare.request")

# Load balancer health checks and static files are not API traffic: they would dilute the 5xx rate.
NOT_COUNTED = ("/healthz", "/static/")


class RequestContextMiddleware:
    """Binds a request id (X-Request-ID in, or a new one) to every log line of the request, returns it
    in the X-Request-ID response header, binds the signed-in user once known, and counts ApiRequests
    and Api5xx."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
        request.request_id = request_id
        token = logs.log_reset({"request_id": request_id})
        try:
            response = self.get_response(request)
            response[logs.REQUEST_ID_HEADER] = request_id
            if not request.path.startswith(NOT_COUNTED):
                metrics.emit("ApiRequests")
                if response.status_code >= 500:
                    metrics.emit("Api5xx")
            return response
        finally:
            logs._context.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Runs after the authentication middleware: the user (session) is known here.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            logs.log_bind(user_id=user.pk)
        return None

    def process_exception(self, request, exception):
        logger.error(
            "unhandled exception in %s %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            exc_info=exception,
            extra={"errorType": type(exception).__name__, "path": request.path},
        )
        return None
