from __future__ import annotations

import time

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from accounts.services import signin_audit, signin_lockout_record

OIDC_BACKEND = "wecare.auth.CognitoOIDCBackend"


def _method(user, request) -> str:
    if getattr(user, "backend", "") == OIDC_BACKEND:
        return "oidc"
    if request is not None and getattr(request, "signin_break_glass", False):
        return "password-break-glass"
    return "password"


@receiver(user_logged_in)
def audit_login_success(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        # The session's clock starts at sign-in (accounts.middleware.SessionTimeoutMiddleware).
        request.session[SESSION_STARTED_KEY] = request.session[SESSION_SEEN_KEY] = int(time.time())
    details = {"backend": getattr(user, "backend", "")}
    if getattr(user, "role", None):
        details["role"] = user.role
    signin_audit(request=request, outcome="success", method=_method(user, request), user=user, details=details)


@receiver(user_login_failed)
def audit_login_failure(sender, credentials, request=None, **kwargs):
    if request is not None and getattr(request, "signin_audited", False):
        return  # the OIDC callback recorded this attempt itself, with its reason
    # credentials has the password scrubbed by Django; keep only the username.
    username = credentials.get("username", "")
    method = "oidc" if "code_verifier" in credentials or "nonce" in credentials else "password"
    reason = getattr(request, "signin_failure_reason", "") if request is not None else ""
    signin_audit(
        request=request,
        outcome="failure",
        method=method,
        username=username,
        reason=reason or ("wrong email or password" if method == "password" else "sign-in failed"),
    )


@receiver(user_locked_out)
def audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    signin_lockout_record(request=request, username=username or "", ip_address=ip_address or "")
