"""The redirect: /l/<slug> and /l/<slug>/<token> → the destination (UTM parameters added), fast.

One function, ``redirect_answer(slug, token, meta)``, decides; two thin doors call it: the Django view
(links.views.follow, for the test client and any server without the fast door) and ``wsgi_redirect``,
which wecare.wsgi puts in front of Django for /l/ so a click costs no session, CSRF, auth or message
middleware. What it costs instead:

- the link: from this process's cache (LINK_CACHE_SECONDS; disabling or expiring a link takes
  effect everywhere within that time), else one SELECT;
- a personal link: nothing here; the recorder resolves the tokens of a batch in one SELECT;
- the click: appended to the recorder's buffer (links.clicks), written in batches;
- the rate limit: a counter per source address in this process (LINK_RATE_LIMIT_PER_MINUTE per
  process; with N web processes a source gets at most N times that; the load balancer's WAF is the
  outer line).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accounts.services import client_ip
from links.clicks import PendingClick, device_class, is_preview_fetcher, recorder, referrer_host
from links.models import UTM_FIELDS, ShortLink

logger = logging.getLogger(__name__)

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PATH = re.compile(r"^/l/(?P<slug>[^/]+)(?:/(?P<token>[^/]+))?/?$")

NOT_FOUND_BODY = "This link does not exist or has been switched off."
EXPIRED_BODY = "This link has expired."
LIMITED_BODY = "Too many requests from your address. Try again in a minute."


@dataclass(frozen=True)
class Target:
    link_id: object
    location: str
    enabled: bool
    expires_at: object


@dataclass(frozen=True)
class Answer:
    status: int
    location: str = ""
    body: str = ""
    retry_after: int = 0


def destination_with_utm(destination: str, utm: dict[str, str]) -> str:
    """The destination with the link's UTM parameters added; parameters it already has are kept."""
    parts = urlsplit(destination)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in utm.items() if value and name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, Target | None]] = {}

    def get(self, slug: str, *, tidy_connection: bool = False) -> Target | None:
        now = time.monotonic()
        hit = self.entries.get(slug)
        if hit is not None and now - hit[0] < settings.LINK_CACHE_SECONDS:
            return hit[1]
        if tidy_connection:
            # Outside Django's handler the request path reads the database only here: as Django does
            # around each request, a connection that broke or outlived CONN_MAX_AGE is replaced first.
            close_old_connections()
        row = ShortLink.objects.filter(slug=slug).values("id", "destination", "enabled", "expires_at", *UTM_FIELDS)
        row = row.first()
        target = (
            Target(
                link_id=row["id"],
                location=destination_with_utm(row["destination"], {f: row[f] for f in UTM_FIELDS}),
                enabled=row["enabled"],
                expires_at=row["expires_at"],
            )
            if row
            else None
        )
        with self.lock:
            if len(self.entries) > 10_000:  # a scan of made-up slugs must not grow the cache forever
                self.entries.clear()
            self.entries[slug] = (now, target)
        return target

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


class _SourceLimit:
    """Requests per source address over the last minute, in this process: a sliding window estimated
    from this minute's count and the last minute's, weighted by how much of it is still in the window
    (no burst of twice the limit across a minute boundary)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.window = 0
        self.counts: dict[str, int] = {}
        self.previous: dict[str, int] = {}

    def allow(self, source: str) -> bool:
        now = time.time()
        window = int(now // 60)
        with self.lock:
            if window != self.window:
                self.previous = self.counts if window == self.window + 1 else {}
                self.window, self.counts = window, {}
            count = self.counts.get(source, 0) + 1
            self.counts[source] = count
            earlier = self.previous.get(source, 0) * (1 - (now % 60) / 60)
        return count + earlier <= settings.LINK_RATE_LIMIT_PER_MINUTE

    def clear(self) -> None:
        with self.lock:
            self.counts, self.previous = {}, {}


targets = _Cache()
limits = _SourceLimit()


def redirect_answer(slug: str, token: str | None, meta: dict, *, tidy_connection: bool = False) -> Answer:
    """What /l/<slug>[/<token>] answers for a request with these CGI-style headers (``meta``).
    ``tidy_connection``: called outside Django's request handling (the fast door)."""
    if not limits.allow(client_ip(SimpleNamespace(META=meta)) or "unknown"):
        return Answer(429, body=LIMITED_BODY, retry_after=60)
    if not SLUG.match(slug) or (token is not None and not TOKEN.match(token)):
        return Answer(404, body=NOT_FOUND_BODY)
    target = targets.get(slug, tidy_connection=tidy_connection)
    if target is None or not target.enabled:
        return Answer(404, body=NOT_FOUND_BODY)
    now = timezone.now()
    if target.expires_at is not None and target.expires_at <= now:
        return Answer(410, body=EXPIRED_BODY)
    user_agent = meta.get("HTTP_USER_AGENT", "")
    if not is_preview_fetcher(user_agent):
        # Whose personal link it was is worked out with the batch (links.clicks.clicks_write).
        recorder.record(
            PendingClick(
                link_id=target.link_id,
                clicked_at=now,
                referrer_host=referrer_host(meta.get("HTTP_REFERER", "")),
                device=device_class(user_agent),
                token=token or "",
            )
        )
    return Answer(302, location=target.location)


def response_headers(answer: Answer) -> list[tuple[str, str]]:
    headers = [
        ("Cache-Control", "no-store"),  # every click must reach us
        ("Referrer-Policy", "no-referrer"),  # the destination never sees the personal token
        ("X-Content-Type-Options", "nosniff"),
    ]
    if settings.SECURE_HSTS_SECONDS:
        headers.append(("Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}; includeSubDomains"))
    if answer.location:
        headers.append(("Location", answer.location))
    if answer.retry_after:
        headers.append(("Retry-After", str(answer.retry_after)))
    return headers


REASONS = {302: "302 Found", 404: "404 Not Found", 410: "410 Gone", 429: "429 Too Many Requests"}


def wsgi_redirect(environ: dict, start_response):
    """The fast door (see the module docstring); anything but GET/HEAD of /l/... is not ours."""
    match = PATH.match(environ.get("PATH_INFO", ""))
    if (
        settings.SECURE_SSL_REDIRECT
        and environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme")) != "https"
    ):
        # As SecurityMiddleware does for every other page.
        location = f"https://{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}"
        start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
        return [b""]
    try:
        answer = redirect_answer(match["slug"], match["token"], environ, tidy_connection=True)
    except Exception:
        logger.exception("link redirect failed")
        answer = Answer(503, body="The link service is unavailable. Try again shortly.")
    body = answer.body.encode()
    headers = response_headers(answer)
    headers += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(REASONS.get(answer.status, "503 Service Unavailable"), headers)
    return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


def is_redirect_request(environ: dict) -> bool:
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD") and bool(PATH.match(environ.get("PATH_INFO", "")))
