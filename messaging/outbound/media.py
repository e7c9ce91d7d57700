"""Outgoing files: put once in the private media bucket, sent in as many messages as wanted."""

from __future__ import annotations

import re
import uuid
from typing import IO

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from messaging.outbound.request import OutgoingMedia
from wecare import aws
from wecare.errors import StorageUnavailable

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(filename: str) -> str:
    name = SAFE_NAME.sub("_", (filename or "").rsplit("/", 1)[-1]).strip("._") or "file"
    return name[-100:]


def media_upload(
    *, data: bytes | IO[bytes], content_type: str, filename: str = "", size: int | None = None
) -> OutgoingMedia:
    """Store a file under MEDIA_OUTGOING_PREFIX; send it with message_send. Raises StorageUnavailable."""
    if size is None:
        size = len(data) if isinstance(data, bytes | bytearray) else None
    if hasattr(data, "seek"):
        data.seek(0)
    key = f"{settings.MEDIA_OUTGOING_PREFIX}{timezone.now():%Y/%m/%d}/{uuid.uuid4()}/{safe_filename(filename)}"
    try:
        aws.client("s3").put_object(
            Bucket=settings.MEDIA_BUCKET, Key=key, Body=data, ContentType=content_type or "application/octet-stream"
        )
        if size is None:
            size = aws.client("s3").head_object(Bucket=settings.MEDIA_BUCKET, Key=key)["ContentLength"]
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailable(f"The media file could not be stored: {exc}", code="MEDIA_STORE_UNAVAILABLE") from exc
    return OutgoingMedia(content_type=content_type, size=size, filename=filename, s3_key=key)
