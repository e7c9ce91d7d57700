"""Who is following a link (a person, or an app fetching a preview), and the click recorder.

WhatsApp, Slack, Telegram, iMessage and the rest fetch a link the moment it is pasted or received to
draw its preview card: those fetches are not clicks. They are recognised by their User-Agent.

The recorder keeps the redirect fast: a click is a row appended to this process's buffer, written
with one multi-row INSERT every LINK_CLICK_FLUSH_SECONDS by a background thread (or at once when that
setting is 0, as in tests). Personal tokens are resolved there too, one SELECT for the whole batch,
so the redirect itself reads nothing but the (cached) link. A process stopped by SIGTERM writes its
buffer on exit; a SIGKILL loses at most that last fraction of a second of clicks, never a redirect.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import threading
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from links.models import Click, DeviceClass, PersonalLink
from wecare import metrics

logger = logging.getLogger(__name__)

PREVIEW_FETCHERS = re.compile(
    r"whatsapp|facebookexternalhit|facebookcatalog|meta-externalagent|slackbot|slack-imgproxy|twitterbot|"
    r"telegrambot|discordbot|linkedinbot|googlebot|bingbot|applebot|skypeuripreview|redditbot|embedly|"
    r"pinterest|vkshare|w3c_validator|iframely|outbrain|quora link preview|snapchat|mastodon|"
    r"bot\b|bot/|crawler|spider|preview|headlesschrome|python-requests|curl/|wget/|go-http-client",
    re.IGNORECASE,
)
TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|(android(?!.*mobile))", re.IGNORECASE)
MOBILE = re.compile(r"mobi|iphone|ipod|android|blackberry|opera mini|iemobile|windows phone", re.IGNORECASE)
DESKTOP = re.compile(r"windows nt|macintosh|x11|cros|linux x86_64", re.IGNORECASE)


# User-Agents repeat (a few browser builds make most clicks): each is classified once per process
# (1,024 kept: at most ~8 MB even for made-up 8 KB headers).
@functools.lru_cache(maxsize=1024)
def is_preview_fetcher(user_agent: str) -> bool:
    """An unfurler or crawler (or no User-Agent at all: no browser sends none)."""
    return not user_agent or bool(PREVIEW_FETCHERS.search(user_agent))


@functools.lru_cache(maxsize=1024)
def device_class(user_agent: str) -> str:
    if TABLET.search(user_agent):
        return DeviceClass.TABLET
    if MOBILE.search(user_agent):
        return DeviceClass.MOBILE
    if DESKTOP.search(user_agent):
        return DeviceClass.DESKTOP
    return DeviceClass.OTHER


def referrer_host(referrer: str) -> str:
    """Only the host of the page the click came from: its path may carry someone's data."""
    try:
        return (urlsplit(referrer).hostname or "")[:255] if referrer else ""
    except ValueError:
        return ""


class PendingClick(NamedTuple):
    """A click as the redirect saw it (a plain tuple: no model is built on the request path)."""

    link_id: Any
    clicked_at: datetime
    referrer_host: str
    device: str
    token: str  # of a personal link, or ""


class ClickRecorder:
    """This process's buffer of clicks, written in batches (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.pending: list[PendingClick] = []
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.stopping = threading.Event()
        self.dropped = 0

    def record(self, click: PendingClick) -> None:
        """Keep ``click`` for the next write (at once when LINK_CLICK_FLUSH_SECONDS is 0)."""
        if settings.LINK_CLICK_FLUSH_SECONDS <= 0:
            clicks_write([click])
            return
        with self.lock:
            if len(self.pending) >= settings.LINK_CLICK_BUFFER_MAX:
                self.dropped += 1  # the database has been away for long: the redirect still works
                return
            self.pending.append(click)
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self._start()
            if len(self.pending) >= settings.LINK_CLICK_BATCH:
                self.wake.notify()

    def _start(self) -> None:
        # After a fork (gunicorn preloading) the parent's thread does not exist in the child.
        self.pid = os.getpid()
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, name="link-clicks", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                with self.lock:
                    if len(self.pending) < settings.LINK_CLICK_BATCH:
                        self.wake.wait(timeout=settings.LINK_CLICK_FLUSH_SECONDS)
                self.flush()
                # The flusher's own connection: kept (CONN_MAX_AGE), replaced when broken or obsolete.
                connection.close_if_unusable_or_obsolete()
        finally:
            connection.close()

    def stop(self) -> None:
        """Write what is buffered and end the flusher (at exit; tests)."""
        self.stopping.set()
        with self.lock:
            self.wake.notify()
        if self.thread is not None and self.pid == os.getpid():
            self.thread.join(timeout=5)
        self.flush()

    def flush(self) -> int:
        with self.lock:
            batch, self.pending = self.pending, []
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.error("link clicks: %s dropped, the buffer was full (database unavailable?)", dropped)
        if not batch:
            return 0
        try:
            clicks_write(batch)
        except Exception:  # the database is away: keep the clicks for the next round
            logger.exception("link clicks: %s not written yet", len(batch))
            with self.lock:
                self.pending[:0] = batch[: max(0, settings.LINK_CLICK_BUFFER_MAX - len(self.pending))]
            return 0
        return len(batch)


def clicks_write(batch: list[PendingClick]) -> None:
    """Store these clicks, each personal one with its contact and bulk job (one SELECT for the batch's
    tokens); a token of another link, or unknown, leaves the click anonymous. On PostgreSQL one INSERT
    of arrays (unnest): building a model per click would cost more than the redirect itself."""
    tokens = {click.token for click in batch if click.token}
    known = (
        {
            token: (pk, link_id, contact_id, job_id)
            for token, pk, link_id, contact_id, job_id in PersonalLink.objects.filter(token__in=tokens).values_list(
                "token", "id", "link_id", "contact_id", "bulk_job_id"
            )
        }
        if tokens
        else {}
    )
    columns: dict[str, list] = {name: [] for name in CLICK_COLUMNS}
    for click in batch:
        found = known.get(click.token)
        personal_id, contact_id, job_id = (
            (found[0], found[2], found[3])
            if found and found[1] == click.link_id
            else (
                None,
                None,
                None,
            )
        )
        for name, value in zip(
            CLICK_COLUMNS,
            (click.link_id, personal_id, contact_id, job_id, click.clicked_at, click.referrer_host, click.device),
            strict=True,
        ):
            columns[name].append(value)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Click._meta.db_table)
        names = ", ".join(CLICK_COLUMNS)
        arrays = ", ".join(f"%s::{kind}[]" for kind in CLICK_COLUMN_TYPES)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})", list(columns.values()))  # noqa: S608 - names are ours
    else:
        Click.objects.bulk_create(
            [Click(**dict(zip(CLICK_COLUMNS, row, strict=True))) for row in zip(*columns.values(), strict=True)]
        )
    metrics.emit("LinkClicks", len(batch))


CLICK_COLUMNS = ("link_id", "personal_id", "contact_id", "bulk_job_id", "clicked_at", "referrer_host", "device")
CLICK_COLUMN_TYPES = ("uuid", "bigint", "uuid", "uuid", "timestamptz", "text", "text")


recorder = ClickRecorder()
atexit.register(recorder.stop)
