"""OpenID Connect plumbing shared by the browser sign-in and the REST bearer tokens.

- Provider configuration: discovered from ``{OIDC_ISSUER}/.well-known/openid-configuration``,
  cached per process; any endpoint set explicitly in settings wins over the discovered one.
- Signing keys: the provider's JWKS, fetched once and cached; fetched again when a token names a
  key id we do not know (Cognito rotates keys that way), but at most once per
  OIDC_JWKS_MIN_REFRESH_SECONDS, so a flood of tokens with made-up key ids cannot turn us into a
  traffic amplifier against the provider.
- Token verification: RS256 only; issuer, expiry, audience or client id, and token_use checked.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("wecare.auth")

GROUPS_CLAIM = "cognito:groups"
ACCEPTED_ALGORITHMS = ("RS256",)
ACCESS, ID = "access", "id"  # the token_use values Cognito writes

# Endpoint name in the discovery document -> the setting that overrides it.
ENDPOINT_SETTINGS = {
    "authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "token_endpoint": "OIDC_OP_TOKEN_ENDPOINT",
    "userinfo_endpoint": "OIDC_OP_USER_ENDPOINT",
    "jwks_uri": "OIDC_OP_JWKS_ENDPOINT",
    "end_session_endpoint": "OIDC_OP_LOGOUT_ENDPOINT",
}


class OIDCError(Exception):
    """A sign-in or token problem, with a message fit to show and to audit (never a secret)."""


class ProviderUnavailable(OIDCError):
    """The provider (discovery, JWKS, token or userinfo endpoint) could not be reached or answered badly."""


def oidc_enabled() -> bool:
    """OIDC is on when a client id is configured."""
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def issuer() -> str:
    return settings.OIDC_ISSUER.rstrip("/")


def client_id() -> str:
    return settings.OIDC_RP_CLIENT_ID


def client_secret() -> str:
    """The app client's secret, read from Secrets Manager by name (cached there); empty for a public client."""
    name = settings.SECRET_NAME_OIDC_CLIENT_SECRET
    if not name:
        return ""
    from wecare.aws import get_secret

    return get_secret(name)


def _get_json(url: str, what: str) -> dict:
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{what} could not be fetched from {url}: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise ProviderUnavailable(f"{what} at {url} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"{what} at {url} is not JSON") from exc
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{what} at {url} is not a JSON object")
    return data


# --- Discovery ----------------------------------------------------------------------------------
_discovery_lock = threading.Lock()
_discovery_cache: dict[str, tuple[float, dict]] = {}


def discovery_document() -> dict:
    """The issuer's discovery document, cached for OIDC_DISCOVERY_CACHE_SECONDS.

    A stale copy is used (and a warning logged) when a refresh fails, so a provider hiccup does not
    stop sign-ins that the cached endpoints would serve.
    """
    iss = issuer()
    now = time.monotonic()
    with _discovery_lock:
        cached = _discovery_cache.get(iss)
        if cached and cached[0] > now:
            return cached[1]
        try:
            doc = _get_json(f"{iss}/.well-known/openid-configuration", "OIDC discovery document")
        except ProviderUnavailable:
            if cached:
                logger.warning("OIDC discovery refresh failed for %s; using the cached document", iss)
                return cached[1]
            raise
        # OpenID Connect Discovery 1.0 §4.3: the issuer in the document must be exactly ours.
        if doc.get("issuer", "").rstrip("/") != iss:
            raise ProviderUnavailable(
                f"OIDC discovery document names issuer {doc.get('issuer')!r}, expected {iss!r}: check OIDC_ISSUER"
            )
        _discovery_cache[iss] = (now + settings.OIDC_DISCOVERY_CACHE_SECONDS, doc)
        return doc


def endpoint(name: str) -> str:
    """One provider endpoint: the explicit setting if set, else the discovered one."""
    setting = ENDPOINT_SETTINGS[name]
    explicit = getattr(settings, setting, "")
    if explicit:
        return explicit
    value = discovery_document().get(name)
    if not value:
        raise ProviderUnavailable(f"the provider does not publish {name}: set {setting}")
    return value


def reset_caches() -> None:
    """Forget discovery documents and keys (tests, or after changing OIDC settings)."""
    with _discovery_lock:
        _discovery_cache.clear()
    jwks_cache.clear()


# --- Signing keys -------------------------------------------------------------------------------
class JWKSCache:
    """The provider's public keys by key id, thread-safe, refreshed on an unknown kid (rate-limited)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._url = ""
        self._fetched_at = 0.0  # monotonic time of the last successful fetch
        self._attempted_at = float("-inf")  # monotonic time of the last fetch attempt

    def clear(self) -> None:
        with self._lock:
            self._keys, self._url, self._fetched_at, self._attempted_at = {}, "", 0.0, float("-inf")

    def _fetch(self, url: str) -> None:
        self._attempted_at = time.monotonic()
        data = _get_json(url, "JWKS")
        keys: dict[str, jwt.PyJWK] = {}
        for raw in data.get("keys", []):
            if not isinstance(raw, dict) or raw.get("kty") != "RSA" or not raw.get("kid"):
                continue
            if raw.get("use", "sig") != "sig" or raw.get("alg", "RS256") not in ACCEPTED_ALGORITHMS:
                continue
            try:
                keys[raw["kid"]] = jwt.PyJWK(raw, algorithm="RS256")
            except jwt.PyJWTError:
                logger.warning("ignoring a malformed key %s in the JWKS at %s", raw.get("kid"), url)
        if not keys:
            raise ProviderUnavailable(f"the JWKS at {url} has no usable RS256 signing key")
        self._keys, self._url, self._fetched_at = keys, url, time.monotonic()
        logger.info("fetched %d signing key(s) from %s", len(keys), url)

    def get(self, kid: str) -> jwt.PyJWK:
        url = endpoint("jwks_uri")
        with self._lock:
            now = time.monotonic()
            stale = url != self._url or now - self._fetched_at > settings.OIDC_JWKS_CACHE_SECONDS
            if (stale or kid not in self._keys) and now - self._attempted_at >= settings.OIDC_JWKS_MIN_REFRESH_SECONDS:
                try:
                    self._fetch(url)
                except ProviderUnavailable:
                    if url != self._url or not self._keys:
                        raise
                    logger.warning("JWKS refresh failed; keeping the %d cached key(s)", len(self._keys))
            if url != self._url or not self._keys:
                raise ProviderUnavailable("the provider's signing keys are not available yet: try again shortly")
            key = self._keys.get(kid)
        if key is None:
            raise OIDCError(f"the token is signed with an unknown key (kid {kid!r})")
        return key


jwks_cache = JWKSCache()


# --- Tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedToken:
    claims: dict[str, Any]
    token_use: str  # "id" or "access"; "id" for a provider that does not say (plain OIDC ID tokens)


def verify_token(
    token: str,
    *,
    expected_use: tuple[str, ...] = ("id", "access"),
    require_token_use: bool = True,
    nonce: str | None = None,
) -> VerifiedToken:
    """Check a JWT from the provider and return its claims; raise OIDCError saying what is wrong.

    Checked: the algorithm is RS256 (``alg: none`` and HMAC are refused before anything else),
    the signature against the provider's JWKS, expiry, issuer, token_use, and the client: ``aud``
    for ID tokens, ``client_id`` for Cognito access tokens. ``nonce`` when given.
    """
    if not token or token.count(".") != 2:
        raise OIDCError("the token is not a JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise OIDCError("the token header cannot be read") from exc
    alg = header.get("alg")
    if not alg or str(alg).lower() == "none":
        raise OIDCError("unsigned tokens (alg none) are refused")
    if alg not in ACCEPTED_ALGORITHMS:
        raise OIDCError(f"tokens signed with {alg} are refused: only RS256 is accepted")
    kid = header.get("kid")
    if not kid:
        raise OIDCError("the token does not name its signing key (no kid)")
    key = jwks_cache.get(str(kid))
    leeway = settings.OIDC_CLOCK_SKEW_SECONDS
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=list(ACCEPTED_ALGORITHMS),
            issuer=issuer(),
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise OIDCError("the token has expired") from exc
    except jwt.InvalidIssuerError as exc:
        raise OIDCError("the token was issued by another issuer") from exc
    except jwt.InvalidSignatureError as exc:
        raise OIDCError("the token signature is not valid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise OIDCError(f"the token lacks the {exc.claim} claim") from exc
    except jwt.PyJWTError as exc:
        raise OIDCError(f"the token is not valid: {exc}") from exc

    use = claims.get("token_use")
    if use is None and not require_token_use:
        use = "id"  # a plain OIDC ID token (Cognito always says)
    if use not in expected_use:
        raise OIDCError(f"token_use {use!r} is not accepted here (expected {' or '.join(expected_use)})")
    if use == ACCESS:
        if claims.get("client_id") != client_id():
            raise OIDCError("the access token was issued to another client")
    else:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if client_id() not in audiences:
            raise OIDCError("the ID token was issued to another client (aud)")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id():
            raise OIDCError("the ID token names several audiences and we are not its authorized party")
    if nonce is not None and claims.get("nonce") != nonce:
        raise OIDCError("the ID token nonce does not match this sign-in")
    return VerifiedToken(claims=claims, token_use=use)


def userinfo(access_token: str) -> dict:
    """Claims from the provider's userinfo endpoint (for access tokens, which carry no email)."""
    url = endpoint("userinfo_endpoint")
    try:
        response = requests.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=settings.OIDC_TIMEOUT)
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"userinfo could not be fetched: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise OIDCError(f"the userinfo endpoint refused the token (HTTP {response.status_code})")
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderUnavailable("the userinfo answer is not JSON") from exc
    return data if isinstance(data, dict) else {}


# --- Claims -------------------------------------------------------------------------------------
def groups_from_claims(claims: dict) -> list[str]:
    raw = claims.get(GROUPS_CLAIM) or []
    if isinstance(raw, str):  # a single group may arrive as a string
        raw = [raw]
    return [str(g) for g in raw if isinstance(g, str | int)]


def email_is_verified(claims: dict) -> bool:
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- Sign-out -----------------------------------------------------------------------------------
def logout_url(request) -> str:
    """Where to send the browser to end the provider's session too (Cognito's /logout by default)."""
    back = settings.OIDC_LOGOUT_REDIRECT_URL or request.build_absolute_uri(settings.LOGOUT_REDIRECT_URL)
    try:
        base = endpoint("end_session_endpoint")
    except ProviderUnavailable:
        logger.warning("no provider logout endpoint known: only the local session is ended")
        return back
    params = {"client_id": client_id(), settings.OIDC_LOGOUT_REDIRECT_PARAM: back}
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ImproperlyConfigured(f"{url!r} is not an absolute URL")
    return f"{parts.scheme}://{parts.netloc}"
