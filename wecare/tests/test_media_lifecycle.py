"""deploy/media-lifecycle.json: the S3 backstop behind the nightly purge of media (README, Deploying)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings

from messaging.models import MESSAGE_RETENTION_DAYS
from wecare import aws

RULES = json.loads((Path(settings.BASE_DIR) / "deploy" / "media-lifecycle.json").read_text())


def test_the_lifecycle_rules_cover_the_platforms_media_and_import_prefixes_and_never_the_archive():
    prefixes = {rule["Filter"]["Prefix"]: rule["Expiration"]["Days"] for rule in RULES["Rules"]}

    assert prefixes[settings.MEDIA_INCOMING_PREFIX] > MESSAGE_RETENTION_DAYS
    assert prefixes[settings.MEDIA_OUTGOING_PREFIX] > MESSAGE_RETENTION_DAYS
    assert settings.CONTACTS_IMPORT_PREFIX in prefixes
    assert not any(settings.ARCHIVE_PREFIX.startswith(prefix) for prefix in prefixes)


def test_s3_accepts_the_lifecycle_configuration_as_written(aws_endpoint):
    s3 = aws.client("s3")
    bucket = f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=RULES)
        stored = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    finally:
        s3.delete_bucket(Bucket=bucket)

    assert {rule["ID"] for rule in stored} == {rule["ID"] for rule in RULES["Rules"]}
