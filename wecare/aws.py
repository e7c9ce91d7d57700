"""The one place that makes boto3 clients, and the cached reader of Secrets Manager.

boto3 honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> by itself, so a local emulator
(moto_server) or a local fake of a service is reached without any code here knowing about it.
"""

from __future__ import annotations

import threading
import time
from functools import cache, lru_cache
from pathlib import Path

import boto3
from botocore.config import Config

_session_lock = threading.Lock()
_secret_cache: dict[str, tuple[float, str]] = {}
_secret_lock = threading.Lock()


def _settings():
    from django.conf import settings

    return settings


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _config(max_attempts: int | None = None, read_timeout: float | None = None) -> Config:
    settings = _settings()
    return Config(
        region_name=settings.AWS_REGION,
        # total_max_attempts counts the first try too, as AWS_MAX_ATTEMPTS does in the AWS SDKs;
        # botocore's "max_attempts" key counts retries only (one request more than configured).
        retries={"mode": "standard", "total_max_attempts": max_attempts or settings.AWS_MAX_ATTEMPTS},
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=read_timeout or settings.AWS_READ_TIMEOUT,
        max_pool_connections=50,
    )


@cache
def client(service: str, *, max_attempts: int | None = None, read_timeout: float | None = None):
    """A boto3 client for ``service``; clients are thread-safe and cached per process.

    ``max_attempts`` overrides AWS_MAX_ATTEMPTS for callers that retry on their own (outbound
    sends pass 1, so the task's retries are the only ones and their total stays bounded).
    """
    with _session_lock:  # boto3 sessions are not thread-safe while creating clients
        return _session().client(service, config=_config(max_attempts, read_timeout))


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints or stub a client call this)."""
    client.cache_clear()
    _session.cache_clear()
    with _secret_lock:
        _secret_cache.clear()


def forget_secret(name: str) -> None:
    """Drop one cached secret (after it was refused: it may have been rotated)."""
    with _secret_lock:
        _secret_cache.pop(name, None)


def get_secret(name: str, *, region: str | None = None) -> str:
    """The string value of a Secrets Manager secret, cached for SECRETS_CACHE_SECONDS.

    ``region`` lets settings.py read the Django secret key before settings are loaded.
    Values are never logged.
    """
    now = time.monotonic()
    with _secret_lock:
        cached = _secret_cache.get(name)
        if cached and cached[0] > now:
            return cached[1]
    if region is not None:
        # Settings are not loaded yet: the same retries and timeouts as _config(), with their defaults.
        config = Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": 3},
            connect_timeout=5,
            read_timeout=15,
        )
        sm = _session().client("secretsmanager", config=config)
        ttl = 300
    else:
        sm = client("secretsmanager")
        ttl = _settings().SECRETS_CACHE_SECONDS
    value = sm.get_secret_value(SecretId=name)["SecretString"]
    with _secret_lock:
        _secret_cache[name] = (now + ttl, value)
    return value


# --- LIVE sends only from the configured account -------------------------------------------------
_account_lock = threading.Lock()
_account_checked: str | None = None


class WrongAWSAccount(RuntimeError):
    """SEND_MODE=LIVE, but the credentials belong to another AWS account than AWS_ACCOUNT_ID (or none)."""


def live_account_verify() -> str | None:
    """With SEND_MODE=LIVE, ask STS whose credentials these are and refuse any account but AWS_ACCOUNT_ID.

    Checked once per process, at start (system check, WSGI start, worker start), never at import:
    production credentials of a preview, or a stack deployed into the wrong account, cannot send for
    real. Returns the verified account id, or None in DRY_RUN.
    """
    global _account_checked
    settings = _settings()
    if settings.SEND_MODE != "LIVE":
        return None
    with _account_lock:
        if _account_checked == settings.AWS_ACCOUNT_ID:
            return _account_checked
        try:
            account = client("sts").get_caller_identity()["Account"]
        except Exception as exc:  # no credentials, STS unreachable: not known to be the right account
            raise WrongAWSAccount(
                "SEND_MODE=LIVE: the AWS account of the credentials could not be read from STS "
                f"({exc.__class__.__name__})."
            ) from exc
        if account != settings.AWS_ACCOUNT_ID:
            raise WrongAWSAccount(
                f"SEND_MODE=LIVE is refused: the credentials belong to AWS account {account}, "
                f"not AWS_ACCOUNT_ID={settings.AWS_ACCOUNT_ID}."
            )
        _account_checked = account
        return account


def live_account_reset() -> None:
    global _account_checked
    with _account_lock:
        _account_checked = None


def read_secret_file(setting: str, path: str) -> str:
    """The secret in a mounted file (``*_FILE`` settings), stripped; a missing or empty file is refused."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{setting}={path!r} cannot be read: {exc.strerror}.") from None
    if not value:
        raise ImproperlyConfigured(f"{setting}={path!r} is empty.")
    return value


def _read_named_secret(setting: str, name: str, region: str | None) -> str:
    from botocore.exceptions import BotoCoreError, ClientError
    from django.core.exceptions import ImproperlyConfigured

    try:
        value = get_secret(name, region=region)
    except (BotoCoreError, ClientError) as exc:
        raise ImproperlyConfigured(
            f"{setting}={name!r}: the Django secret key could not be read from Secrets Manager: {exc}"
        ) from None
    if not value.strip():
        raise ImproperlyConfigured(f"{setting}={name!r} is empty.")
    return value


def lazy_secret(setting: str, name: str, *, region: str | None = None):
    """A str-like value read from Secrets Manager on first use (and again after the cache expires).

    settings.py uses it for SECRET_KEY so importing the settings makes no network call; the first
    signing, or the start-up check wecare.E009, reads it.
    """
    from django.utils.functional import lazy

    return lazy(_read_named_secret, str)(setting, name, region)
