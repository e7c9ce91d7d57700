from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.services import audit_record


def _source_ip(request) -> str:
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "")


@receiver(user_logged_in)
def audit_login_success(sender, request, user, **kwargs):
    audit_record(
        user=user,
        action="login.success",
        resource_type="user",
        resource_id=user.pk,
        details={"ip": _source_ip(request), "backend": getattr(user, "backend", "")},
    )


@receiver(user_login_failed)
def audit_login_failure(sender, credentials, request=None, **kwargs):
    # credentials has the password scrubbed by Django; keep only the username.
    audit_record(
        user=None,
        action="login.failure",
        resource_type="user",
        resource_id=credentials.get("username", ""),
        details={"ip": _source_ip(request), "username": credentials.get("username", "")},
    )
