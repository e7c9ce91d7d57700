"""Sign-in with the Cognito user pool: the browser's OIDC backend and the REST API's bearer tokens.

Browser: mozilla-django-oidc's authorization-code flow with PKCE (S256), state and nonce, with the
provider's endpoints discovered from the issuer (wecare.oidc), the client secret read from Secrets
Manager, and the ID token checked strictly (RS256 against the JWKS, issuer, audience, expiry, nonce).
The role comes from ``cognito:groups`` at every sign-in (accounts.services.user_sign_in_sync).

REST: ``Authorization: Bearer <Cognito access or ID token>``; the same checks plus token_use and
the client id; the same user/role sync. Every refused token is audited and answered 401.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from requests.auth import HTTPBasicAuth
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.services import SignInRefused, signin_audit, user_sign_in_sync
from wecare import oidc

logger = logging.getLogger("wecare.auth")


class CognitoOIDCBackend(OIDCAuthenticationBackend):
    """The authorization-code sign-in against the configured issuer (Cognito by default)."""

    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_RP_IDP_SIGN_KEY = None

    def __init__(self, *args, **kwargs):
        # Django builds a backend for every request that carries a session: no discovery, no
        # secret, no network here. Endpoints and the secret are looked up when a sign-in needs them.
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802 - the name mozilla-django-oidc uses
        return oidc.endpoint("token_endpoint")

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return oidc.endpoint("userinfo_endpoint")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return oidc.endpoint("jwks_uri")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return oidc.client_id()

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:  # noqa: N802
        return oidc.client_secret()

    def authenticate(self, request, **kwargs):
        # Only the callback view calls authenticate with a nonce and a PKCE verifier.
        if request is None or not oidc.oidc_enabled() or "nonce" not in kwargs or "code_verifier" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SignInRefused as exc:
            refusal = exc
        except oidc.ProviderUnavailable as exc:
            refusal = SignInRefused(f"the identity provider is unavailable: {exc}", status=503)
        except oidc.OIDCError as exc:
            refusal = SignInRefused(f"the sign-in token was refused: {exc}", status=401)
        except requests.RequestException as exc:
            refusal = SignInRefused(f"the identity provider could not be reached: {exc.__class__.__name__}", status=503)
        except Exception as exc:  # e.g. Secrets Manager down: refused and audited, not a bare 500
            logger.exception("OIDC sign-in failed unexpectedly")
            refusal = SignInRefused(f"sign-in failed: {exc.__class__.__name__}", status=503)
        request.signin_refusal = refusal
        signin_audit(
            request=request,
            outcome="failure",
            method="oidc",
            user=refusal.user,
            username=refusal.email,
            reason=refusal.reason,
        )
        return None

    def get_user(self, user_id):
        # Unlike mozilla-django-oidc's, a deactivated user's session ends at the next request.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def get_token(self, payload: dict) -> dict:
        """Exchange the code (with the PKCE verifier) at the token endpoint."""
        secret = payload.pop("client_secret", "")
        auth = None
        if secret and settings.OIDC_TOKEN_USE_BASIC_AUTH:
            auth = HTTPBasicAuth(payload["client_id"], secret)
        elif secret:
            payload["client_secret"] = secret
        response = requests.post(self.OIDC_OP_TOKEN_ENDPOINT, data=payload, auth=auth, timeout=settings.OIDC_TIMEOUT)
        if response.status_code != 200:
            try:
                body = response.json()
                detail = f"{body.get('error', '')} {body.get('error_description', '')}".strip()
            except ValueError:
                detail = ""
            raise oidc.OIDCError(f"the token endpoint refused the code (HTTP {response.status_code} {detail})".strip())
        try:
            return response.json()
        except ValueError as exc:
            raise oidc.ProviderUnavailable("the token endpoint answered with something other than JSON") from exc

    def verify_token(self, token, **kwargs) -> dict:
        verified = oidc.verify_token(
            token or "", expected_use=("id",), require_token_use=False, nonce=kwargs.get("nonce")
        )
        return verified.claims

    def get_or_create_user(self, access_token, id_token, payload):
        claims = dict(payload)
        if not claims.get("email") and access_token:
            # Some providers put the email in userinfo only; the groups stay those of the ID token.
            info = oidc.userinfo(access_token)
            if info.get("sub") == claims.get("sub"):
                claims.setdefault("email", info.get("email", ""))
                claims.setdefault("email_verified", info.get("email_verified"))
        return user_sign_in_sync(
            subject=str(claims.get("sub", "")),
            email=claims.get("email", ""),
            groups=oidc.groups_from_claims(claims),
            email_verified=oidc.email_is_verified(claims),
            username=str(claims.get("cognito:username", "")),
        )


class ProviderUnavailableError(exceptions.APIException):
    status_code = 503
    default_detail = "The identity provider cannot be reached to check the token: try again shortly."
    default_code = "identity_provider_unavailable"


class CognitoBearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` with a Cognito access or ID token."""

    keyword = "Bearer"

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            self._refuse(request, "the Authorization header must be 'Bearer <token>' with exactly one token")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            self._refuse(request, "the bearer token contains characters a JWT cannot have")
        if not oidc.oidc_enabled():
            self._refuse(request, "bearer tokens are not accepted here: Cognito sign-in is not configured")
        try:
            verified = oidc.verify_token(token, expected_use=("access", "id"))
            user = self._user_for(verified, token)
        except oidc.ProviderUnavailable as exc:
            self._audit(request, f"identity provider unavailable: {exc}")
            raise ProviderUnavailableError() from exc
        except oidc.OIDCError as exc:
            self._refuse(request, str(exc))
        except SignInRefused as exc:
            self._audit(request, exc.reason, user=exc.user, username=exc.email)
            if exc.status == 403:
                raise exceptions.PermissionDenied(f"Bearer token refused: {exc.reason}.") from exc
            raise exceptions.AuthenticationFailed(f"Bearer token refused: {exc.reason}.") from exc
        return user, verified

    def _user_for(self, verified: oidc.VerifiedToken, token: str):
        claims = verified.claims
        subject = str(claims.get("sub", ""))
        email = claims.get("email", "")
        email_verified = oidc.email_is_verified(claims)
        if not email:
            known = get_user_model().objects.filter(oidc_subject=subject).first() if subject else None
            if known is not None:
                email, email_verified = known.email, True
            elif verified.token_use == oidc.ACCESS:
                # Cognito access tokens carry no email: ask userinfo, once, for a person we have not met.
                info = oidc.userinfo(token)
                if info.get("sub") != subject:
                    raise oidc.OIDCError("userinfo describes another subject than the token")
                email, email_verified = info.get("email", ""), oidc.email_is_verified(info)
        return user_sign_in_sync(
            subject=subject,
            email=email,
            groups=oidc.groups_from_claims(claims),
            email_verified=email_verified,
            username=str(claims.get("cognito:username") or claims.get("username") or ""),
        )

    def _audit(self, request, reason: str, *, user=None, username: str = "") -> None:
        signin_audit(
            request=getattr(request, "_request", request),
            outcome="failure",
            method="bearer",
            user=user,
            username=username,
            reason=reason,
        )

    def _refuse(self, request, reason: str):
        self._audit(request, reason)
        raise exceptions.AuthenticationFailed(f"Invalid bearer token: {reason}.")


class CognitoBearerScheme(OpenApiAuthenticationExtension):
    """Declares the bearer scheme in the OpenAPI schema (drf-spectacular finds it by target class)."""

    target_class = "wecare.auth.CognitoBearerAuthentication"
    name = "cognitoBearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A Cognito access or ID token from the platform's user pool app client. "
                "The role comes from the token's cognito:groups (Viewer, Operator or Admin)."
            ),
        }
