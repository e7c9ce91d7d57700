from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.services import signin_audit

OIDC_BACKEND = "wecare.auth.CognitoOIDCBackend"


def _method(user, request) -> str:
    if getattr(user, "backend", "") == OIDC_BACKEND:
        return "oidc"
    if request is not None and getattr(request, "signin_break_glass", False):
        return "password-break-glass"
    return "password"


@receiver(user_logged_in)
def audit_login_success(sender, request, user, **kwargs):
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
