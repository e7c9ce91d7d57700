"""Password sign-in, kept where OIDC is not the way in, and for the break-glass superuser."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

logger = logging.getLogger("wecare.auth")


def password_sign_in_open() -> bool:
    """Is the password form open to everyone? In local and test, and wherever OIDC is not configured."""
    return settings.LOCAL_LOGIN_ENABLED or not getattr(settings, "OIDC_RP_CLIENT_ID", "")


def password_sign_in_allowed(user) -> bool:
    if password_sign_in_open():
        return True
    # Where Cognito is the way in, only a superuser an Admin explicitly enabled may use a password.
    return bool(user.is_superuser and user.break_glass_enabled)


class PasswordBackend(ModelBackend):
    """Django's username/password check, refused where OIDC is the way in (break-glass excepted)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None and password is None:
            return None  # not a password sign-in (e.g. the OIDC callback)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            return None
        if not password_sign_in_allowed(user):
            if request is not None:
                request.signin_failure_reason = (
                    "password sign-in is closed: sign in with Cognito (break-glass is not enabled for this user)"
                )
            return None
        if not password_sign_in_open() and request is not None:
            request.signin_break_glass = True
        return user
