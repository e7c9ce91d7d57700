"""Who is following a link (a person, or an app fetching a preview), and the click recorder.

WhatsApp, Slack, Telegram, iMessage and the rest fetch a link the moment it is pasted or received to
draw its preview card: those fetches are not clicks. They are recognised by their User-Agent.

The recorder keeps the redirect fast: a click is a row appended to this process's buffer, written
with one multi-row INSERT every LINK_CLICK_FLUSH_SECONDS by a background thread (or at once when that
setting is 0, as in tests). A process stopped by SIGTERM writes its buffer on exit; a SIGKILL loses at
most that last fraction of a second of clicks, never a redirect.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, connection

from links.models import Click, DeviceClass
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


def is_preview_fetcher(user_agent: str) -> bool:
    """An unfurler or crawler (or no User-Agent at all: no browser sends none)."""
    return not user_agent or bool(PREVIEW_FETCHERS.search(user_agent))


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


class ClickRecorder:
    """This process's buffer of clicks, written in batches (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.pending: list[Click] = []
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.stopping = threading.Event()

    def record(self, click: Click) -> None:
        if settings.LINK_CLICK_FLUSH_SECONDS <= 0:
            self._write([click])
            return
        with self.lock:
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
        finally:
            connection.close()  # this thread's own connection

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
        if batch:
            try:
                self._write(batch)
            except Exception:  # the database is away: keep the clicks for the next round
                logger.exception("link clicks: %s not written yet", len(batch))
                close_old_connections()
                with self.lock:
                    self.pending[:0] = batch[: settings.LINK_CLICK_BUFFER_MAX]
                return 0
        return len(batch)

    @staticmethod
    def _write(batch: list[Click]) -> None:
        Click.objects.bulk_create(batch)
        metrics.emit("LinkClicks", len(batch))
        if threading.current_thread() is not threading.main_thread() and settings.LINK_CLICK_FLUSH_SECONDS > 0:
            # The flusher's own connection: kept (CONN_MAX_AGE), closed when obsolete.
            connection.close_if_unusable_or_obsolete()


recorder = ClickRecorder()
atexit.register(recorder.stop)
