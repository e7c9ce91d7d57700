"""Inbound media is the sender's file, type and name: a link to it never makes a browser render
HTML, SVG, XML or a script from our bucket, and the name cannot break out of the header."""

from __future__ import annotations

import uuid

import pytest
import requests
from django.conf import settings

from messaging.models import MediaFile
from messaging.selectors import media_presigned_url, media_response_headers, media_safe_filename
from wecare import aws


def _stored(content_type: str, filename: str, body: bytes) -> MediaFile:
    key = f"{settings.MEDIA_INCOMING_PREFIX}test/{uuid.uuid4()}"
    aws.client("s3").put_object(Bucket=settings.MEDIA_BUCKET, Key=key, Body=body, ContentType=content_type)
    return MediaFile(id=uuid.uuid4(), s3_key=key, content_type=content_type, filename=filename)


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "image/svg+xml", "application/xml", "text/xml", "application/javascript", "application/xhtml+xml"],
)
def test_media_a_browser_would_render_is_downloaded_as_an_opaque_attachment(content_type):
    media = _stored(content_type, "invoice.html", b"<script>alert(document.cookie)</script>")

    response = requests.get(media_presigned_url(media), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="invoice.html"'


def test_a_photo_is_still_shown_inline_with_its_own_type():
    media = _stored("image/jpeg", "photo.jpg", b"\xff\xd8\xff\xe0jpeg")

    response = requests.get(media_presigned_url(media), timeout=10)

    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == 'inline; filename="photo.jpg"'


def test_a_content_type_with_parameters_or_capitals_does_not_slip_through():
    media = MediaFile(id=uuid.uuid4(), s3_key="k", content_type="Text/HTML; charset=utf-8", filename="a.html")

    assert media_response_headers(media)["ResponseContentType"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ('evil".html; filename=x.exe', "evil_.html_ filename_x.exe"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("line\r\nSet-Cookie: a=b", "line_Set-Cookie_ a_b"),
        ("", "media"),
        ("...", "media"),
    ],
)
def test_a_file_name_is_sanitised_before_it_reaches_a_header(name, safe):
    assert media_safe_filename(name) == safe
