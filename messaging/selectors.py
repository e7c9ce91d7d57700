"""Reads of the messaging app: message lists for the API, admin and pages; media links; reports.

Expired messages (``expires_at`` passed, 30 days) are left out everywhere, even before the purge.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from messaging.models import MediaFile, Message, MessageUsage, VoiceCall
from wecare import aws

MEDIA_URL_SECONDS = 3600  # pre-signed media links expire after an hour


def message_list(
    *,
    contact_id=None,
    channel: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    dry_run: bool | None = None,
) -> QuerySet[Message]:
    """Live messages, newest first, filtered by whatever is given."""
    qs = Message.objects.live().select_related("contact", "requested_by").prefetch_related("media")
    if contact_id:
        qs = qs.filter(contact_id=contact_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if direction:
        qs = qs.filter(direction=direction)
    if created_after:
        qs = qs.filter(created_at__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    if dry_run is not None:
        qs = qs.filter(dry_run=dry_run)
    return qs.order_by("-created_at")


def message_get(message_id) -> Message | None:
    return message_list().filter(pk=message_id).first()


# Shown in the page (img/audio/video): types a browser displays without running anything.
INLINE_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "video/mp4",
        "video/3gpp",
    }
)
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")


def media_safe_filename(name: str, *, default: str = "media") -> str:
    """A file name fit for a Content-Disposition header: no path, quotes, control or odd characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_FILENAME_CHARS.sub("_", base).strip(" .")[:100]
    return base or default


def media_response_headers(media_file: MediaFile) -> dict[str, str]:
    """How S3 must answer for this object: inline only for plain images/audio/video, else a download.

    The sender chooses the content type and name of inbound media: HTML, SVG, XML or a script opened
    inline from our bucket's origin could run. Everything not known to be inert is an attachment
    typed application/octet-stream, so the browser saves it and never renders it.
    """
    content_type = (media_file.content_type or "").split(";", 1)[0].strip().lower()
    filename = media_safe_filename(media_file.filename or "", default=f"media-{media_file.pk}")
    if content_type in INLINE_MEDIA_TYPES:
        return {"ResponseContentType": content_type, "ResponseContentDisposition": f'inline; filename="{filename}"'}
    return {
        "ResponseContentType": "application/octet-stream",
        "ResponseContentDisposition": f'attachment; filename="{filename}"',
    }


def media_presigned_url(media_file: MediaFile, *, expires_in: int = MEDIA_URL_SECONDS) -> str:
    """A GET link to a private media object, valid for an hour (computed locally, no request to S3)."""
    params = {"Bucket": settings.MEDIA_BUCKET, "Key": media_file.s3_key, **media_response_headers(media_file)}
    return aws.client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)


def message_usage_report(*, since: date | None = None, until: date | None = None, dry_run: bool = False) -> list[dict]:
    """Messages per day, channel, kind (template / free-form), template and category, for cost reports."""
    rows = MessageUsage.objects.filter(dry_run=dry_run)
    if since:
        rows = rows.filter(day__gte=since)
    if until:
        rows = rows.filter(day__lte=until)
    return list(
        rows.values("day", "channel", "kind", "template_name", "template_language", "category")
        .annotate(count=Sum("count"), business_initiated=Sum("business_initiated"), segments=Sum("segments"))
        .order_by("day", "channel", "kind", "template_name")
    )


def voice_calls_for(*, contact, limit: int = 50) -> list[VoiceCall]:
    """The contact's voice calls still kept (90 days), newest first."""
    calls = VoiceCall.objects.filter(contact=contact, expires_at__gt=timezone.now()).order_by("-created_at")
    return list(calls[:limit])
