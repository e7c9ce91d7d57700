"""What a short link may point at: an http(s) page that is not the platform's own sign-in.

A short link on our domain that lands on a look-alike of our sign-in page (or on the real one, with
a crafted ``next``) is a phishing tool; ``javascript:`` and ``data:`` run in the clicker's browser.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http.request import validate_host

MAX_DESTINATION = 2048
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
# Paths of our own hosts that sign someone in (or would take a crafted next=), and the redirect
# itself (a link to a link is a loop).
OWN_SIGN_IN_PATHS = ("/accounts/", "/admin", "/oidc/", "/l/")
# Cognito's hosted sign-in pages, whichever pool.
SIGN_IN_HOST_SUFFIXES = (".amazoncognito.com", ".auth.amazoncognito.com")
_url = URLValidator(schemes=["http", "https"])


def own_hosts() -> list[str]:
    """Host patterns that are this platform (as ALLOWED_HOSTS spells them), LINK_BASE_URL's too."""
    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    if settings.LINK_BASE_URL:
        hosts.append(urlsplit(settings.LINK_BASE_URL).hostname or "")
    return [h for h in hosts if h]


def sign_in_hosts() -> set[str]:
    hosts = set()
    for url in (settings.OIDC_ISSUER, settings.OIDC_OP_AUTHORIZATION_ENDPOINT):
        host = urlsplit(url or "").hostname
        if host and settings.OIDC_ENABLED:
            hosts.add(host.lower())
    return hosts


def destination_validate(value: str) -> str:
    """The destination, trimmed; ValidationError with a sentence saying what is wrong otherwise."""
    url = (value or "").strip()
    if not url:
        raise ValidationError("Enter the address the link leads to.", code="required")
    if len(url) > MAX_DESTINATION:
        raise ValidationError(f"The address is longer than {MAX_DESTINATION} characters.", code="too_long")
    if any(ord(ch) < 33 for ch in url):
        raise ValidationError("The address contains spaces or control characters.", code="invalid")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        raise ValidationError("Only http:// and https:// addresses can be linked to.", code="scheme")
    try:
        _url(url)
    except ValidationError:
        raise ValidationError("This is not a valid web address.", code="invalid") from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError("The address must not carry a user name or password.", code="credentials")
    host = (parts.hostname or "").lower().rstrip(".")
    path = parts.path or "/"
    # Our own host: the sign-in pages, and any page given a crafted "next" to send someone on to.
    if validate_host(host, own_hosts()) and (path.startswith(OWN_SIGN_IN_PATHS) or "next=" in parts.query):
        raise ValidationError("Links to this platform's sign-in pages are not allowed.", code="sign_in")
    if host in sign_in_hosts() or host.endswith(SIGN_IN_HOST_SUFFIXES):
        raise ValidationError("Links to this platform's sign-in pages are not allowed.", code="sign_in")
    return url


def slug_validate(value: str) -> str:
    slug = (value or "").strip()
    if not SLUG_RE.match(slug):
        raise ValidationError(
            "A slug is 3 to 64 letters, digits, '-' or '_', starting with a letter or digit.", code="slug"
        )
    return slug
