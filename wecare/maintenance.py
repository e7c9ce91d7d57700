"""Periodic maintenance: the retention purge, with an archive first.

Rows carry their own expiry (``expires_at``): audit entries 180 days, messages 30 days, dead-letter
records 7 days, AI suggestions and voice calls 90 days; inbound event payloads go 30 days after they arrived
(processed or failed ones: a pending event is still work); contact import jobs 30 days after they
ended (or were queued and never ran), with their uploaded file if it is somehow still in S3.
``purge_expired`` archives what has expired to S3 (wecare.archive: gzipped JSON lines, one object per
table per day, verified by count and checksum), then deletes exactly the archived rows, in batches so a
large backlog never holds one long transaction, and removes the S3 objects of expired messages' media
(and of import jobs' leftover uploads) before their rows. A table-day
whose archive fails is not deleted at all, and an alert goes out (``archive-failed:<table>``).
It is idempotent: run it again after a failure and it carries on where it stopped.

The tables: ``RETAINED_TABLES``. A new table with a retention period is one more entry there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from contacts.models import ContactImportJob
from messaging.models import MediaFile, Message
from wecare import alerts, aws
from wecare.archive import ArchiveError, archive_rows

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
S3_DELETE_LIMIT = 1000  # DeleteObjects takes at most 1000 keys per request


@dataclass(frozen=True)
class RetainedTable:
    """A table whose rows are archived and purged once ``expired(now)`` matches them."""

    label: str  # "app_label.model_name", also the archive folder
    model: str  # "app_label.ModelName"
    day_field: str  # the row's archive day is this field's date
    expired: Callable[[datetime], Q]
    optional: bool = False  # skipped while the model does not exist (another app adds it)

    def model_class(self) -> type[models.Model] | None:
        try:
            return apps.get_model(self.model)
        except LookupError:
            if self.optional:
                return None
            raise


def _expired_at(now: datetime) -> Q:
    return Q(expires_at__lte=now)


def _inbound_event_expired(now: datetime) -> Q:
    return Q(received_at__lte=now - timedelta(days=settings.INBOUND_EVENT_RETENTION_DAYS)) & ~Q(status="pending")


def _import_job_expired(now: datetime) -> Q:
    cutoff = now - timedelta(days=settings.CONTACTS_IMPORT_JOB_RETENTION_DAYS)
    # A running job is the sweeper's (contacts.import_jobs); a queued one this old will never run.
    return Q(status__in=["done", "failed"], finished_at__lte=cutoff) | Q(status="queued", created_at__lte=cutoff)


# Purged in this order; messages last (their purge may stop on an S3 failure, see the command).
RETAINED_TABLES: list[RetainedTable] = [
    RetainedTable("accounts.auditlog", "accounts.AuditLog", "timestamp", _expired_at),
    RetainedTable("messaging.dlqmessage", "messaging.DLQMessage", "created_at", _expired_at),
    RetainedTable("messaging.inboundevent", "messaging.InboundEvent", "received_at", _inbound_event_expired),
    RetainedTable("contacts.contactimportjob", "contacts.ContactImportJob", "created_at", _import_job_expired),
    RetainedTable("automation.aisuggestion", "automation.AISuggestion", "created_at", _expired_at, optional=True),
    RetainedTable("messaging.voicecall", "messaging.VoiceCall", "created_at", _expired_at),
    RetainedTable("messaging.message", "messaging.Message", "created_at", _expired_at),
]


@dataclass
class PurgeResult:
    audit_entries: int = 0
    messages: int = 0
    media_files: int = 0
    media_objects: int = 0
    dlq_messages: int = 0
    inbound_events: int = 0
    voice_calls: int = 0
    ai_interactions: int = 0
    import_jobs: int = 0
    import_files: int = 0  # uploaded files still in S3 when their job expired (normally deleted at its end)
    # Expired messages kept because S3 refused to delete their media: the next run retries them.
    messages_kept: int = 0
    archived: dict[str, int] = field(default_factory=dict)  # rows archived per table
    archive_failures: list[str] = field(default_factory=list)  # "<table> <day>: why" (nothing deleted)

    def as_dict(self) -> dict:
        return asdict(self)


RESULT_FIELDS = {
    "accounts.auditlog": "audit_entries",
    "messaging.dlqmessage": "dlq_messages",
    "messaging.inboundevent": "inbound_events",
    "messaging.voicecall": "voice_calls",
    "automation.aisuggestion": "ai_interactions",
}


def _archived_days(table: RetainedTable, model, now: datetime, result: PurgeResult):
    """Yield (day, primary keys archived and verified) for each day with expired rows of a table."""
    expired = model._default_manager.filter(table.expired(now))
    days = (
        expired.annotate(archive_day=TruncDate(table.day_field))
        .values_list("archive_day", flat=True)
        .distinct()
        .order_by("archive_day")
    )
    for day in list(days):
        rows = expired.filter(**{f"{table.day_field}__date": day})
        pks = list(rows.values_list("pk", flat=True))
        try:
            archive_rows(table.label, day, model._default_manager.filter(pk__in=pks))
        except ArchiveError as exc:
            result.archive_failures.append(f"{table.label} {day}: {exc}")
            logger.error("purge: %s; its %s row(s) are kept", exc, len(pks))
            alerts.alert_raise(
                f"archive-failed:{table.label}",
                subject=f"Retention archive of {table.label} failed: nothing deleted",
                detail=f"The archive of {table.label} for {day} ({len(pks)} rows) failed, so none was deleted: {exc}",
            )
            continue
        result.archived[table.label] = result.archived.get(table.label, 0) + len(pks)
        yield day, pks


def _batches(pks: list, size: int):
    for start in range(0, len(pks), size):
        yield pks[start : start + size]


def _purge_simple(model, pks: list, batch_size: int) -> int:
    """Delete archived rows of a model with no side effects outside the database."""
    total = 0
    for ids in _batches(pks, batch_size):
        # A queryset delete: AuditLog.delete() refuses single deletes on purpose, the purge is the exception.
        deleted, _ = model._default_manager.filter(pk__in=ids).delete()
        total += deleted
    return total


def _delete_media_objects(keys: list[str], bucket: str | None = None) -> tuple[int, set[str]]:
    """Delete S3 objects from the media bucket (or ``bucket``); return how many went and the keys S3 refused."""
    s3 = aws.client("s3")
    deleted, failed = 0, set()
    for start in range(0, len(keys), S3_DELETE_LIMIT):
        chunk = keys[start : start + S3_DELETE_LIMIT]
        response = s3.delete_objects(
            Bucket=bucket or settings.MEDIA_BUCKET,
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


def _purge_messages(pks: list, batch_size: int, result: PurgeResult) -> None:
    for ids in _batches(pks, batch_size):
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
        result.messages_kept += len(blocked)
        deletable = [pk for pk in ids if pk not in blocked]
        with transaction.atomic():
            _, per_model = Message.objects.filter(pk__in=deletable).delete()
        result.messages += per_model.get(Message._meta.label, 0)
        result.media_files += per_model.get(MediaFile._meta.label, 0)


def _purge_import_jobs(pks: list, batch_size: int, result: PurgeResult) -> None:
    """Delete expired import jobs; first any uploaded file left behind (personal data), as for media."""
    for ids in _batches(pks, batch_size):
        jobs = list(ContactImportJob.objects.filter(pk__in=ids).values_list("pk", "s3_key"))
        keys = sorted({key for _, key in jobs if key.startswith(settings.CONTACTS_IMPORT_PREFIX)})
        # Deleting a key that is not there succeeds: normally the job deleted its file when it ended.
        deleted, failed = _delete_media_objects(keys, bucket=settings.REPORT_BUCKET)
        result.import_files += deleted
        deletable = [pk for pk, key in jobs if key not in failed]
        deleted_rows, _ = ContactImportJob.objects.filter(pk__in=deletable).delete()
        result.import_jobs += deleted_rows


def purge_expired(*, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> PurgeResult:
    """Archive, verify, then delete what has expired in every retained table (see the module docstring)."""
    now = now or timezone.now()
    result = PurgeResult()
    for table in RETAINED_TABLES:
        model = table.model_class()
        if model is None:
            continue
        for _day, pks in _archived_days(table, model, now, result):
            if model is Message:
                _purge_messages(pks, batch_size, result)
            elif model is ContactImportJob:
                _purge_import_jobs(pks, batch_size, result)
            else:
                name = RESULT_FIELDS[table.label]
                setattr(result, name, getattr(result, name) + _purge_simple(model, pks, batch_size))
    logger.info(
        "purge_expired: %s", " ".join(f"{k}={v}" for k, v in result.as_dict().items() if k != "archive_failures")
    )
    return result
