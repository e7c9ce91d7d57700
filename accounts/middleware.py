from __future__ import annotations

import time

from django.conf import settings
from django.contrib import auth

from accounts.services import audit_forbidden, audit_record


class AuditForbiddenMiddleware:
    """Every 403 — admin, API or page — leaves an audit entry saying who, what and why.

    Views and permission classes may explain the refusal by setting
    ``request.audit_denial_reason``; otherwise the reason is the generic one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            match = getattr(request, "resolver_match", None)
            kwargs = match.kwargs if match else {}
            resource_id = next(iter(kwargs.values()), "") if kwargs else ""
            audit_forbidden(
                user=getattr(request, "user", None),
                resource_type=(match.view_name if match else "") or request.path,
                resource_id=resource_id,
                reason=getattr(request, "audit_denial_reason", "permission denied"),
                details={"method": request.method, "path": request.path},
            )
        return response


SESSION_STARTED_KEY = "wecare_signed_in_at"
SESSION_SEEN_KEY = "wecare_last_seen_at"
# The last-seen time is written at most this often, so reading pages does not write the session each time.
SEEN_RESOLUTION_SECONDS = 60


class SessionTimeoutMiddleware:
    """Ends a signed-in session after SESSION_IDLE_SECONDS without a request, and after
    SESSION_ABSOLUTE_SECONDS from sign-in whatever happens (defaults 8 h and 24 h).

    The session times are server-side: a stolen cookie is worth no more than the session it carries.
    The request then goes on as anonymous (pages send it to the sign-in page, the API answers 401/403).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            started = request.session.get(SESSION_STARTED_KEY)
            seen = request.session.get(SESSION_SEEN_KEY, started)
            if started is None:
                request.session[SESSION_STARTED_KEY] = request.session[SESSION_SEEN_KEY] = now
            elif (
                now - started > settings.SESSION_ABSOLUTE_SECONDS
                or now - (seen or started) > settings.SESSION_IDLE_SECONDS
            ):
                reason = "absolute" if now - started > settings.SESSION_ABSOLUTE_SECONDS else "idle"
                audit_record(
                    user=user,
                    action="session.expired",
                    resource_type="user",
                    resource_id=user.pk,
                    details={"reason": reason, "signed_in_seconds": now - started},
                )
                auth.logout(request)
            elif now - seen >= SEEN_RESOLUTION_SECONDS:
                request.session[SESSION_SEEN_KEY] = now
        return self.get_response(request)
