"""pynamodb plumbing: table names with the configured prefix, the emulator endpoint when set.

DynamoDB holds only what many workers must update atomically and what expires by TTL
(de-duplication claims, rate-limit buckets, tier counters). TTL attributes are Number epoch seconds.
"""

from __future__ import annotations

import os
import time

from pynamodb.models import Model

from wecare.environments import resource_prefix

_models: list[type[Model]] = []


def table_name(base: str) -> str:
    # Read here, not from settings: models name their table at import time. Same default as settings.
    prefix = os.environ.get("DYNAMODB_TABLE_PREFIX") or resource_prefix(os.environ.get("ENVIRONMENT", ""))
    return prefix + base


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    return os.environ.get("AWS_REGION", "us-east-1")


def register(model: type[Model]) -> type[Model]:
    """Class decorator: the bootstrap command creates every registered table (with its TTL)."""
    _models.append(model)
    return model


def registered_models() -> list[type[Model]]:
    return list(_models)


def item_alive(expires_at, *, now: float | None = None) -> bool:
    """False for an item whose TTL has passed (requirement 17.7).

    DynamoDB deletes expired items asynchronously, typically within minutes but up to 48 hours
    later: until then reads still return them, so every reader of a TTL table checks this (or puts
    ``<ttl attribute> > now`` in its condition or filter). ``expires_at`` is a datetime
    (TTLAttribute), epoch seconds, or None (no expiry).
    """
    if expires_at is None:
        return True
    epoch = expires_at.timestamp() if hasattr(expires_at, "timestamp") else float(expires_at)
    return epoch > (time.time() if now is None else now)
