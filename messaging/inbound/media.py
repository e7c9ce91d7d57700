"""Inbound media: from WhatsApp into the media bucket at {MEDIA_INCOMING_PREFIX}{messageId}.{ext}."""

from __future__ import annotations

import logging
import mimetypes

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from messaging.inbound.payload import InboundPayloadError
from messaging.models import MediaFile
from wecare import aws

logger = logging.getLogger(__name__)

# socialmessaging errors that no retry will fix (the media id is unknown, expired or not ours).
PERMANENT_MEDIA_ERRORS = {
    "ValidationException",
    "InvalidParametersException",
    "ResourceNotFoundException",
    "AccessDeniedException",
    "AccessDeniedByMetaException",
}


# WhatsApp's media types → the extension of the stored object (the rest: mimetypes, else "bin").
EXTENSIONS = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}


class MediaUnavailable(Exception):
    """The media could not be fetched for now (throttled, Meta slow): retry later."""


def extension_for(mime_type: str) -> str:
    base = mime_type.split(";")[0].strip().lower()
    if base in EXTENSIONS:
        return EXTENSIONS[base]
    guessed = mimetypes.guess_extension(base) or ""
    return guessed.lstrip(".") or "bin"


def media_fetch(media: MediaFile) -> MediaFile:
    """Copy an inbound file from WhatsApp into the media bucket, at {prefix}{messageId}.{ext}.

    GetWhatsAppMessageMedia treats the S3 key as a prefix and appends the media id (and an
    extension) itself (aws-apis.md §1.4), so the exact name cannot be asked for. The file goes to
    a staging prefix of its own, ``{prefix}staging/{messageId}/``; whatever object appears there is
    copied to the final key and the staging object deleted. Idempotent: a file already in place is
    left alone, and a staging object left by a crash is picked up by the next attempt.
    """
    if media.s3_key and media.size is not None:
        return media
    message = media.message
    bucket = settings.MEDIA_BUCKET
    prefix = settings.MEDIA_INCOMING_PREFIX
    staging = f"{prefix}staging/{message.pk}/"
    s3 = aws.client("s3")
    staged = _staged_objects(s3, bucket, staging)
    mime_type = media.content_type
    if not staged:
        try:
            result = aws.client("socialmessaging").get_whatsapp_message_media(
                mediaId=media.whatsapp_media_id,
                originationPhoneNumberId=message.origination_phone_number_id,
                destinationS3File={"bucketName": bucket, "key": staging},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in PERMANENT_MEDIA_ERRORS:
                raise InboundPayloadError(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {code}: {exc}") from exc
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {code}") from exc
        except BotoCoreError as exc:
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id}: {exc}") from exc
        mime_type = result.get("mimeType") or mime_type
        staged = _staged_objects(s3, bucket, staging)
        if not staged:
            raise MediaUnavailable(f"GetWhatsAppMessageMedia {media.whatsapp_media_id} left nothing under {staging}")
    source = _pick_staged(staged, media.whatsapp_media_id)
    mime_type = (mime_type or "application/octet-stream").split(";")[0].strip()
    final_key = f"{prefix}{message.pk}.{extension_for(mime_type)}"
    s3.copy_object(
        Bucket=bucket,
        Key=final_key,
        CopySource={"Bucket": bucket, "Key": source},
        ContentType=mime_type,
        MetadataDirective="REPLACE",
        Metadata={"whatsapp-media-id": media.whatsapp_media_id, "message-id": str(message.pk)},
    )
    size = s3.head_object(Bucket=bucket, Key=final_key)["ContentLength"]
    for key in staged:
        s3.delete_object(Bucket=bucket, Key=key)
    media.s3_key = final_key
    media.content_type = mime_type
    media.size = size
    media.uploaded_at = timezone.now()
    media.save(update_fields=["s3_key", "content_type", "size", "uploaded_at"])
    logger.info(
        "inbound media %s of message %s stored at %s (%s bytes)", media.whatsapp_media_id, message.pk, final_key, size
    )
    return media


def _staged_objects(s3, bucket: str, staging: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=staging)
    return [obj["Key"] for obj in listing.get("Contents", [])]


def _pick_staged(keys: list[str], media_id: str) -> str:
    named = [key for key in keys if media_id in key.rsplit("/", 1)[-1]]
    return sorted(named or keys)[0]
