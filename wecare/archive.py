"""The retention archive: expired rows go to S3 as gzipped JSON lines before they are deleted.

One object per table per day (the day the row was created), under ARCHIVE_PREFIX in ARCHIVE_BUCKET:
``archive/<app.model>/<YYYY>/<MM>/<DD>.jsonl.gz``. Each line is one row in Django's serialization
format (``{"model", "pk", "fields"}``), so ``restore_archive`` loads it back with Django's own
deserializer. The object's metadata holds the line count and the SHA-256 of the uncompressed lines.

``archive_rows`` writes, then reads the object back and verifies count, checksum and that every row
to delete is in it; only then may the caller delete. Rows of one day usually expire over two nights
(a day's rows expire as the clock passes them): the second night merges its rows into the existing
object (verified first), de-duplicated by primary key, so an object always holds the whole day and a
re-run after a crash between archive and delete archives the same rows again without duplicates.

Tables and retention periods: ``RETAINED_TABLES`` (wecare.maintenance). Add a table there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import date

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from wecare import aws


class ArchiveError(Exception):
    """The archive could not be written or verified: nothing of it may be deleted."""


@dataclass(frozen=True)
class ArchiveObject:
    key: str
    count: int
    sha256: str


def _client():
    # Its own client (more attempts than the default): a nightly batch may wait out a slow S3.
    return aws.client("s3", max_attempts=max(5, settings.AWS_MAX_ATTEMPTS))


def archive_key(label: str, day: date) -> str:
    return f"{settings.ARCHIVE_PREFIX}{label}/{day:%Y/%m/%d}.jsonl.gz"


def _line(obj: dict) -> str:
    return json.dumps(obj, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _encode(lines: list[str]) -> tuple[bytes, str]:
    raw = ("\n".join(lines) + "\n").encode() if lines else b""
    return raw, hashlib.sha256(raw).hexdigest()


def archive_read(key: str) -> tuple[list[dict], ArchiveObject] | None:
    """The rows of an archive object, verified against its metadata; None when there is no object."""
    try:
        response = _client().get_object(Bucket=settings.ARCHIVE_BUCKET, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    raw = gzip.decompress(response["Body"].read())
    lines = raw.decode().splitlines()
    meta = response.get("Metadata", {})
    digest = hashlib.sha256(raw).hexdigest()
    if meta.get("sha256") != digest or int(meta.get("count", -1)) != len(lines):
        raise ArchiveError(
            f"s3://{settings.ARCHIVE_BUCKET}/{key} does not match its metadata "
            f"(count {meta.get('count')} vs {len(lines)}, sha256 {meta.get('sha256')} vs {digest})"
        )
    return [json.loads(line) for line in lines], ArchiveObject(key=key, count=len(lines), sha256=digest)


def archive_rows(label: str, day: date, queryset: models.QuerySet) -> ArchiveObject:
    """Archive the rows of ``queryset`` (one table, one day) into the day's object; verify it.

    Raises ArchiveError when anything fails: the caller then deletes nothing.
    """
    key = archive_key(label, day)
    try:
        existing = archive_read(key)
        by_pk: dict[str, str] = {}
        if existing is not None:
            for row in existing[0]:
                by_pk[str(row["pk"])] = _line(row)
        wanted = set()
        for row in serializers.serialize("python", queryset.order_by("pk").iterator(chunk_size=2000)):
            pk = str(row["pk"])
            by_pk[pk] = _line(row)
            wanted.add(pk)
        raw, digest = _encode([by_pk[pk] for pk in sorted(by_pk)])
        _client().put_object(
            Bucket=settings.ARCHIVE_BUCKET,
            Key=key,
            Body=gzip.compress(raw, mtime=0),
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
            Metadata={"count": str(len(by_pk)), "sha256": digest, "table": label, "day": day.isoformat()},
            ServerSideEncryption="AES256",
        )
        # Verify what S3 now holds, not what we sent: count, checksum, and every row to delete is there.
        stored = archive_read(key)
    except (BotoCoreError, ClientError, ValueError, OSError) as exc:
        raise ArchiveError(f"archive of {label} {day} failed: {type(exc).__name__}: {exc}") from exc
    if stored is None:
        raise ArchiveError(f"archive of {label} {day}: s3://{settings.ARCHIVE_BUCKET}/{key} is missing after writing")
    rows, obj = stored
    if obj.sha256 != digest or obj.count != len(by_pk):
        raise ArchiveError(f"archive of {label} {day}: the stored object differs from what was written")
    missing = wanted - {str(row["pk"]) for row in rows}
    if missing:
        raise ArchiveError(f"archive of {label} {day}: {len(missing)} row(s) missing from the stored object")
    return obj


def archive_restore(label: str, day: date, *, hold_until=None) -> tuple[int, int]:
    """Load an archived day back into its table: returns (restored, already present).

    Rows already in the table are left as they are. ``hold_until`` replaces a restored row's
    ``expires_at``, so the next purge does not delete it again at once.
    """
    from django.db import IntegrityError, transaction

    found = archive_read(archive_key(label, day))
    if found is None:
        raise ArchiveError(
            f"no archive of {label} for {day} (s3://{settings.ARCHIVE_BUCKET}/{archive_key(label, day)})"
        )
    rows, _ = found
    restored = present = 0
    for item in serializers.deserialize("python", rows):
        model = type(item.object)
        if model._default_manager.filter(pk=item.object.pk).exists():
            present += 1
            continue
        if hold_until is not None and hasattr(item.object, "expires_at"):
            item.object.expires_at = hold_until
        try:
            with transaction.atomic():
                item.save()
        except IntegrityError as exc:  # a row it points at is gone (a deleted contact): say so, carry on
            raise ArchiveError(f"row {item.object.pk} of {label} cannot be restored: {exc}") from exc
        restored += 1
    return restored, present
