"""Inbound video and audio play inline in a real browser: the CSP's media-src lets the pre-signed links load."""

from __future__ import annotations

import pytest
from django.conf import settings

from contacts.models import Contact
from messaging.models import Direction, MediaFile, Message, MessageStatus
from wecare import aws

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_inbound_video_and_audio_load_from_the_media_bucket_without_a_csp_violation(browser_page, login_as):
    page = browser_page
    login_as(page, "Viewer")
    contact = Contact.objects.create(name="Asha Rao", phone="+919876543210", opt_in_whatsapp=True)
    s3 = aws.client("s3")
    for key, content_type in (("clip.mp4", "video/mp4"), ("note.ogg", "audio/ogg")):
        s3.put_object(
            Bucket=settings.MEDIA_BUCKET, Key=f"test-media/{key}", Body=b"\x00" * 64, ContentType=content_type
        )
        inbound = Message.objects.create(
            contact=contact, channel="whatsapp", direction=Direction.INBOUND, content="", status=MessageStatus.RECEIVED
        )
        MediaFile.objects.create(message=inbound, s3_key=f"test-media/{key}", content_type=content_type, size=64)
    fetched: list[str] = []
    page.on("requestfinished", lambda request: fetched.append(request.url.split("?")[0]))

    page.goto(f"/dm/{contact.pk}/")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('video, audio')).every(m => m.networkState !== 0 && m.networkState !== 2)"
    )

    assert page.locator("video.media-preview").count() == 1 and page.locator("audio").count() == 1
    assert any(url.endswith("test-media/clip.mp4") for url in fetched), fetched
    assert any(url.endswith("test-media/note.ogg") for url in fetched), fetched
    # browser_page fails the test on a console error, which a blocked media-src would log.
