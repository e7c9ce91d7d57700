"""Personal links: our short links in a message body become one per recipient (/l/<slug>/<token>).

Only links to short links of this platform are rewritten (an operator places ``https://<our
host>/l/<slug>`` in the text, the email's HTML or both): other addresses are left exactly as written.
The token is random (not derived from anything guessable) and its PersonalLink row says whose it
is, in which message, of which bulk job.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from django.db import connection
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from links.models import PersonalLink, ShortLink
from links.validation import own_hosts

# https://host[:port]/l/<slug>, not already followed by a token or more path.
SHORT_LINK_RE = re.compile(
    r"(?P<base>https?://(?P<host>[A-Za-z0-9.\-\[\]:]+)/l/(?P<slug>[A-Za-z0-9][A-Za-z0-9_-]{2,63}))(?![A-Za-z0-9_/-])"
)
TOKEN_BYTES = 8  # 11 characters of base64url: short in an SMS, unguessable


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _ours(host: str, hosts: list[str]) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, hosts)


def slugs_in(texts: Iterable[str]) -> set[str]:
    """The slugs of our short links found in ``texts``."""
    hosts = own_hosts()
    found = set()
    for text in texts:
        if text and "/l/" in text:
            found.update(m["slug"] for m in SHORT_LINK_RE.finditer(text) if _ours(m["host"], hosts))
    return found


def personalise(messages: list, *, bulk_job_id=None) -> list[PersonalLink]:
    """Rewrite, in place, the short links in the ``content`` and ``html`` of these unsaved outbound
    messages (each with its ``id`` and ``contact_id`` set) into personal links, and store one
    PersonalLink per message and short link. Call it inside the transaction that stores the messages
    (the rows point at them). Disabled, expired and unknown short links are left as written."""
    slugs = slugs_in(text for m in messages for text in (m.content, m.html))
    if not slugs:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("personal links are stored in the transaction that stores their messages")
    now = timezone.now()
    links = {
        link.slug: link
        for link in ShortLink.objects.filter(slug__in=slugs, enabled=True).only("id", "slug", "expires_at")
        if not link.is_expired(now)
    }
    if not links:
        return []
    hosts = own_hosts()
    rows: list[PersonalLink] = []
    for message in messages:
        tokens: dict[str, str] = {}

        def swap(match: re.Match, tokens: dict[str, str] = tokens) -> str:
            slug = match["slug"]
            if slug not in links or not _ours(match["host"], hosts):
                return match[0]
            token = tokens.setdefault(slug, new_token())
            return f"{match['base']}/{token}"

        message.content = SHORT_LINK_RE.sub(swap, message.content or "")
        if message.html:
            message.html = SHORT_LINK_RE.sub(swap, message.html)
        rows.extend(
            PersonalLink(
                token=token,
                link=links[slug],
                contact_id=message.contact_id,
                message_id=message.id,
                bulk_job_id=bulk_job_id,
                created_at=now,
            )
            for slug, token in tokens.items()
        )
    PersonalLink.objects.bulk_create(rows)
    return rows
