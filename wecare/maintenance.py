"""Periodic maintenance: the retention purge.

Rows carry their own expiry (``expires_at``): audit entries 180 days, messages 30 days, dead-letter
records 7 days. ``purge_expired`` deletes what has expired, in batches so a large backlog never
holds one long transaction, and removes the S3 objects of expired messages' media before their rows.
It is idempotent: run it again after a failure and it carries on where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditLog
from messaging.models import DLQMessage, MediaFile, Message
from wecare import aws

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
S3_DELETE_LIMIT = 1000  # DeleteObjects takes at most 1000 keys per request


@dataclass
class PurgeResult:
    audit_entries: int = 0
    messages: int = 0
    media_files: int = 0
    media_objects: int = 0
    dlq_messages: int = 0
    # Expired messages kept because S3 refused to delete their media: the next run retries them.
    messages_kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _expired_ids(queryset, now: datetime, batch_size: int, exclude: set | None = None) -> list:
    qs = queryset.filter(expires_at__lte=now).order_by()
    if exclude:
        qs = qs.exclude(pk__in=exclude)
    return list(qs.values_list("pk", flat=True)[:batch_size])


def _purge_simple(model, now: datetime, batch_size: int) -> int:
    """Delete expired rows of a model with no side effects outside the database."""
    total = 0
    while ids := _expired_ids(model.objects.all(), now, batch_size):
        # A queryset delete: AuditLog.delete() refuses single deletes on purpose, the purge is the exception.
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        total += deleted
    return total


def _delete_media_objects(keys: list[str]) -> tuple[int, set[str]]:
    """Delete S3 objects from the media bucket; return how many went and the keys S3 refused."""
    s3 = aws.client("s3")
    deleted, failed = 0, set()
    for start in range(0, len(keys), S3_DELETE_LIMIT):
        chunk = keys[start : start + S3_DELETE_LIMIT]
        response = s3.delete_objects(
            Bucket=settings.MEDIA_BUCKET,
            Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
        )
        errors = response.get("Errors", [])
        for error in errors:
            logger.warning(
                "purge: S3 refused to delete %s: %s %s", error.get("Key"), error.get("Code"), error.get("Message")
            )
            failed.add(error["Key"])
        deleted += len(chunk) - len(errors)
    return deleted, failed


def _purge_messages(now: datetime, batch_size: int, result: PurgeResult) -> None:
    kept: set = set()
    while ids := _expired_ids(Message.objects.all(), now, batch_size, exclude=kept):
        media = list(MediaFile.objects.filter(message_id__in=ids).values_list("message_id", "s3_key"))
        keys = {key for _, key in media}
        # The same object may back messages that have not expired yet (one upload sent to many): keep it.
        shared = set(
            MediaFile.objects.filter(s3_key__in=keys).exclude(message_id__in=ids).values_list("s3_key", flat=True)
        )
        # Objects first, rows second: a failure between the two leaves a row pointing at nothing
        # (purged next run), never an object nobody can find any more.
        deleted_objects, failed = _delete_media_objects(sorted(keys - shared))
        result.media_objects += deleted_objects
        blocked = {message_id for message_id, key in media if key in failed}
        kept |= blocked
        result.messages_kept += len(blocked)
        deletable = [pk for pk in ids if pk not in blocked]
        with transaction.atomic():
            _, per_model = Message.objects.filter(pk__in=deletable).delete()
        result.messages += per_model.get(Message._meta.label, 0)
        result.media_files += per_model.get(MediaFile._meta.label, 0)


def purge_expired(*, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> PurgeResult:
    """Delete expired audit entries, messages (with their media, rows and S3 objects) and DLQ records."""
    now = now or timezone.now()
    result = PurgeResult()
    result.audit_entries = _purge_simple(AuditLog, now, batch_size)
    result.dlq_messages = _purge_simple(DLQMessage, now, batch_size)
    _purge_messages(now, batch_size, result)
    logger.info("purge_expired: %s", " ".join(f"{k}={v}" for k, v in result.as_dict().items()))
    return result
