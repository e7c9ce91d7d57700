"""Inbound media: GetWhatsAppMessageMedia (botocore Stubber) into the media bucket (moto S3), renamed
to {MEDIA_INCOMING_PREFIX}{messageId}.{ext}, with a MediaFile row; failures resume, never duplicate."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from messaging import inbound
from messaging.models import MediaFile, Message
from messaging.tests.inbound_fixtures import JPEG, FakeEumMedia, process_fixture
from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification
from wecare import aws

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]


def _objects(prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listing = s3.list_objects_v2(Bucket=settings.MEDIA_BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=settings.MEDIA_BUCKET, Key=o["Key"])["Body"].read() for o in listing}


@pytest.fixture(autouse=True)
def empty_media_prefix():
    s3 = aws.client("s3")
    for key in _objects(settings.MEDIA_INCOMING_PREFIX):
        s3.delete_object(Bucket=settings.MEDIA_BUCKET, Key=key)
    yield


def _image_notification(media_id: str, mime_type: str = "image/jpeg") -> dict:
    return sns_notification(
        eum_envelope(
            inbound_value(
                {
                    "id": f"wamid.test-{uuid.uuid4().hex}",
                    "type": "image",
                    "image": {"mime_type": mime_type, "id": media_id},
                }
            )
        )
    )


def test_the_inbound_image_fixture_lands_at_exactly_the_message_key_with_a_media_row(client):
    with FakeEumMedia() as fake:
        fake.expect("530339869524171")
        process_fixture(client, "sns-notification-inbound-image.json")
        fake.stubber.assert_no_pending_responses()

    message = Message.objects.get()
    media = MediaFile.objects.get()
    expected_key = f"whatsapp-media/whatsapp-media-incoming/{message.pk}.jpeg"
    assert settings.MEDIA_INCOMING_PREFIX == "whatsapp-media/whatsapp-media-incoming/"
    assert (media.message, media.s3_key, media.content_type) == (message, expected_key, "image/jpeg")
    assert (media.size, media.whatsapp_media_id) == (len(JPEG), "530339869524171")
    # Nothing else is left under the prefix: the staging copy AWS wrote is gone.
    assert _objects(settings.MEDIA_INCOMING_PREFIX) == {expected_key: JPEG}
    head = aws.client("s3").head_object(Bucket=settings.MEDIA_BUCKET, Key=expected_key)
    assert head["ContentType"] == "image/jpeg"
    assert fake.calls[0]["destinationS3File"]["key"] == f"{settings.MEDIA_INCOMING_PREFIX}staging/{message.pk}/"
    assert message.message_type == "image"


@pytest.mark.parametrize(
    ("mime_type", "extension"),
    [("audio/ogg; codecs=opus", "ogg"), ("application/pdf", "pdf"), ("video/mp4", "mp4"), ("image/webp", "webp")],
)
def test_the_extension_comes_from_the_mime_type_without_its_parameters(mime_type, extension):
    with FakeEumMedia(data=b"x" * 10, extension="bin") as fake:
        fake.expect("987", mime_type=mime_type)
        inbound.notification_process(_image_notification("987", mime_type))

    media = MediaFile.objects.get()
    assert media.s3_key == f"{settings.MEDIA_INCOMING_PREFIX}{media.message_id}.{extension}"
    assert media.content_type == mime_type.split(";")[0]


def test_a_transient_media_failure_keeps_the_message_and_the_retry_fetches_the_file_once():
    body = _image_notification("777")
    with FakeEumMedia() as fake:
        fake.fail("ThrottledRequestException", 429)
        with pytest.raises(inbound.MediaUnavailable):
            inbound.notification_process(body)

        message = Message.objects.get()
        assert MediaFile.objects.get().size is None  # pending
        fake.expect("777")
        summary = inbound.notification_process(body)  # the task's retry

    assert summary.duplicates == [message.whatsapp_message_id]
    assert Message.objects.count() == 1
    media = MediaFile.objects.get()
    assert media.s3_key == f"{settings.MEDIA_INCOMING_PREFIX}{message.pk}.jpeg"
    assert media.size == len(JPEG)


def test_a_media_id_whatsapp_does_not_know_is_a_permanent_error_and_the_message_is_kept():
    with FakeEumMedia() as fake:
        fake.fail("ResourceNotFoundException", 404)
        with pytest.raises(inbound.InboundPayloadError, match="ResourceNotFoundException"):
            inbound.notification_process(_image_notification("404404"))

    assert Message.objects.count() == 1
    assert MediaFile.objects.get().s3_key == ""


def test_a_file_left_in_staging_by_a_crash_is_finished_without_asking_whatsapp_again():
    body = _image_notification("888")
    with FakeEumMedia() as fake:
        fake.expect("888")
        original_copy = aws.client("s3").copy_object
        calls = {"n": 0}

        def crash_once(**kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("worker lost the network mid-copy")
            return original_copy(**kwargs)

        s3 = aws.client("s3")
        s3.copy_object = crash_once
        try:
            with pytest.raises(ConnectionError):
                inbound.notification_process(body)
            inbound.notification_process(body)  # no second GetWhatsAppMessageMedia is stubbed: none is made
        finally:
            del s3.copy_object
        fake.stubber.assert_no_pending_responses()

    media = MediaFile.objects.get()
    assert _objects(settings.MEDIA_INCOMING_PREFIX) == {media.s3_key: JPEG}
    assert len(fake.calls) == 1
