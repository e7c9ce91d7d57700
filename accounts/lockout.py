"""django-axes, counting password sign-ins only.

Axes sees every failed ``authenticate()``; an OIDC callback that fails (a refused Cognito account, a
provider hiccup) carries a nonce and a PKCE verifier, no password, and is not guessing anything:
it must not lock a whole office's address out of password sign-in, nor be locked out itself.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler


def is_password_attempt(credentials: dict | None) -> bool:
    return bool(credentials) and "password" in credentials and "code_verifier" not in credentials


class PasswordAttemptHandler(AxesDatabaseHandler):
    def is_allowed(self, request, credentials: dict | None = None) -> bool:
        if credentials is not None and not is_password_attempt(credentials):
            return True
        return super().is_allowed(request, credentials)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if not is_password_attempt(credentials):
            return None
        return super().user_login_failed(sender, credentials, request, **kwargs)
