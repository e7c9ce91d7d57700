"""What `make run` adds on a developer's machine, and that none of it reaches a deployed environment:
the SQLite options, the local End User Messaging Social, the local SNS signing identity, play_customer,
and the media-src of the Content Security Policy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from django.core.management import CommandError, call_command

from localdev import sns_local
from localdev.fake_socialmessaging import SAMPLE_TEMPLATES, FakeSocialMessaging, add_samples
from messaging import sns
from messaging.models import MediaFile, TemplateStatus, WhatsAppTemplate
from messaging.selectors import media_presigned_url
from messaging.whatsapp_templates import whatsapp_template_sync
from wecare import aws

ROOT = Path(__file__).resolve().parents[2]
PASSTHROUGH = ("PATH", "HOME", "LANG", "TMPDIR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def _settings_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "wecare.settings",
        "ENVIRONMENT": "test",
        "SEND_MODE": "DRY_RUN",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CLOUDWATCH_LOGS_ENABLED": "false",
        "DJANGO_SECRET_KEY": "k" * 50,
    }


def _python(code: str, tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(_settings_env(tmp_path))
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# --- SQLite -----------------------------------------------------------------------------------------

SHOW_SQLITE = (
    "import django, json; django.setup(); from django.db import connection, transaction\n"
    "cursor = connection.cursor()\n"
    "pragmas = ('journal_mode', 'synchronous', 'busy_timeout')\n"
    "modes = {p: cursor.execute(f'PRAGMA {p}').fetchone()[0] for p in pragmas}\n"
    "with transaction.atomic():\n"
    "    modes['in_transaction'] = connection.in_atomic_block\n"
    "print(json.dumps({**modes, 'transaction_mode': connection.transaction_mode}))"
)


def test_the_sqlite_default_runs_in_wal_with_immediate_transactions_and_a_busy_timeout(tmp_path):
    result = _python(SHOW_SQLITE, tmp_path)

    assert result.returncode == 0, result.stderr
    modes = json.loads(result.stdout.strip().splitlines()[-1])
    # synchronous 1 = NORMAL; the busy timeout in milliseconds.
    assert modes == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 30_000,
        "in_transaction": True,
        "transaction_mode": "IMMEDIATE",
    }


def test_a_writer_waits_for_another_instead_of_failing_with_database_is_locked(tmp_path):
    # Two processes each write 200 rows in short transactions, reading first as a view does: with
    # deferred transactions the read-then-write upgrade fails at once under contention.
    writer = (
        "import django; django.setup(); from django.db import connection, transaction\n"
        "connection.cursor().execute('CREATE TABLE IF NOT EXISTS t (n INTEGER)')\n"
        "for n in range(200):\n"
        "    with transaction.atomic():\n"
        "        connection.cursor().execute('SELECT count(*) FROM t').fetchone()\n"
        "        connection.cursor().execute('INSERT INTO t VALUES (%s)', [n])\n"
        "print('done')"
    )
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(_settings_env(tmp_path))
    _python("import django; django.setup(); from django.db import connection; connection.cursor()", tmp_path)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", writer], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    assert all(out.strip() == "done" for out, _ in outputs)


# --- Local-only endpoints and certificate ------------------------------------------------------------


@pytest.mark.parametrize("service", ["SOCIALMESSAGING", "PINPOINT_SMS_VOICE_V2"])
def test_a_deployed_environment_refuses_a_local_eum_endpoint(tmp_path, service):
    result = _python(
        "import django; django.setup()",
        tmp_path,
        ENVIRONMENT="staging",
        **{f"AWS_ENDPOINT_URL_{service}": "http://127.0.0.1:5001"},
    )

    assert result.returncode != 0
    assert f"AWS_ENDPOINT_URL_{service} is for ENVIRONMENT=local and test only" in result.stderr


def test_a_process_whose_every_aws_endpoint_is_on_loopback_may_use_the_local_eum_endpoints(tmp_path):
    # bench/ runs its workers as production this way: nothing they can reach is real AWS.
    loopback = "http://127.0.0.1:5001"
    code = "import django; django.setup(); print('started')"
    endpoints = {"AWS_ENDPOINT_URL_SOCIALMESSAGING": loopback, "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2": loopback}
    result = _python(code, tmp_path, ENVIRONMENT="staging", AWS_ENDPOINT_URL=loopback, **endpoints)
    assert "is for ENVIRONMENT=local and test only" not in result.stderr  # (staging refuses other things here)

    # One endpoint off this machine and the process may reach real AWS: refused again.
    elsewhere = {**endpoints, "AWS_ENDPOINT_URL_S3": "https://s3.us-east-1.amazonaws.com"}
    result = _python(code, tmp_path, ENVIRONMENT="staging", AWS_ENDPOINT_URL=loopback, **elsewhere)
    assert result.returncode != 0
    assert "is for ENVIRONMENT=local and test only" in result.stderr


@pytest.mark.parametrize("environment", ["test", "staging"])
def test_only_the_local_environment_may_trust_the_local_sns_certificate(tmp_path, environment):
    deployed = {}
    if environment == "staging":  # a deployed environment's own settings, so the fetcher is what is refused
        key_file = tmp_path / "django-secret-key"
        key_file.write_text("k" * 50)
        deployed = {"DJANGO_SECRET_KEY": "", "DJANGO_SECRET_KEY_FILE": str(key_file), "ALLOWED_HOSTS": "example.org"}
    result = _python(
        "import django; django.setup()",
        tmp_path,
        ENVIRONMENT=environment,
        SNS_CERT_FETCHER=sns_local.__name__ + ".fetch_certificate",
        **deployed,
    )

    assert result.returncode != 0
    assert "SNS_CERT_FETCHER=localdev.sns_local.fetch_certificate is for ENVIRONMENT=local only" in result.stderr


@pytest.fixture
def local_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("WECARE_RUN_DIR", str(tmp_path))
    sns.certificate_cache.clear()
    yield sns_local.ensure_identity()
    sns.certificate_cache.clear()


def _signed(identity, settings) -> dict:
    return identity.sign(
        {
            "Type": "Notification",
            "MessageId": "local-1",
            "TopicArn": settings.SNS_TOPIC_ARN,
            "Message": "{}",
            "Timestamp": "2030-01-01T00:00:00.000Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


def test_a_message_signed_locally_verifies_with_environment_local(local_identity, settings):
    settings.ENVIRONMENT = "local"
    settings.SNS_CERT_FETCHER = "localdev.sns_local.fetch_certificate"
    settings.SNS_MAX_MESSAGE_AGE_SECONDS = 0
    message = _signed(local_identity, settings)

    verified = sns.verify_message(message, headers={"x-amz-sns-message-type": "Notification"})

    assert verified.message_id == "local-1" and message["SigningCertURL"] == sns_local.LOCAL_CERT_URL
    key_file = sns_local.identity_dir() / "key.pem"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_the_local_certificate_is_refused_outside_environment_local(local_identity, settings):
    settings.ENVIRONMENT = "test"
    settings.SNS_CERT_FETCHER = "localdev.sns_local.fetch_certificate"
    settings.SNS_MAX_MESSAGE_AGE_SECONDS = 0

    with pytest.raises(sns.SNSVerificationError, match="trusted only with ENVIRONMENT=local"):
        sns.verify_message(_signed(local_identity, settings), headers={"x-amz-sns-message-type": "Notification"})


def test_play_customer_refuses_to_run_outside_environment_local(settings):
    settings.ENVIRONMENT = "test"

    with pytest.raises(CommandError, match="only with ENVIRONMENT=local"):
        call_command("play_customer", "text", "hello")


# --- The local End User Messaging Social ---------------------------------------------------------------


@pytest.fixture
def local_eum(aws_endpoint, monkeypatch):
    with FakeSocialMessaging(latency=0.0, s3_endpoint=aws_endpoint) as fake:
        add_samples(fake)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", fake.url)
        aws.reset_clients()
        yield fake
    monkeypatch.undo()
    aws.reset_clients()


@pytest.mark.django_db
def test_the_sample_waba_syncs_four_approved_templates_positional_named_utility_and_marketing(local_eum):
    result = whatsapp_template_sync()

    assert result.errors == [] and result.created == len(SAMPLE_TEMPLATES) == 4
    rows = {t.name: t for t in WhatsAppTemplate.objects.all()}
    assert {t.status for t in rows.values()} == {TemplateStatus.APPROVED}
    assert rows["order_update"].body_parameters == ["1", "2"]
    assert rows["appointment_reminder"].parameter_format == "named"
    assert rows["appointment_reminder"].body_parameters == ["customer_name", "date"]
    assert {t.category for t in rows.values()} == {"UTILITY", "MARKETING"}


def test_get_whatsapp_message_media_writes_the_customers_file_into_local_s3(local_eum, aws_endpoint, settings):
    media_id = requests.post(
        f"{local_eum.url}/_fake/media", data=b"\x89PNG-bytes", headers={"Content-Type": "image/png"}, timeout=5
    ).json()["mediaId"]

    answer = aws.client("socialmessaging").get_whatsapp_message_media(
        mediaId=media_id,
        originationPhoneNumberId=settings.WHATSAPP_PHONE_NUMBER_IDS[0],
        destinationS3File={"bucketName": settings.MEDIA_BUCKET, "key": "whatsapp-media/test-staging/"},
    )

    assert answer["mimeType"] == "image/png" and answer["fileSize"] == 10
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    stored = s3.get_object(Bucket=settings.MEDIA_BUCKET, Key=f"whatsapp-media/test-staging/{media_id}.png")
    assert stored["Body"].read() == b"\x89PNG-bytes"


def test_an_unknown_media_id_is_not_found(local_eum, settings):
    client = aws.client("socialmessaging")

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_whatsapp_message_media(
            mediaId="999",
            originationPhoneNumberId=settings.WHATSAPP_PHONE_NUMBER_IDS[0],
            destinationS3File={"bucketName": settings.MEDIA_BUCKET, "key": "x/"},
        )


def test_the_local_eum_refuses_an_s3_endpoint_off_this_machine():
    with pytest.raises(ValueError, match="must be on this machine"):
        FakeSocialMessaging(s3_endpoint="https://s3.us-east-1.amazonaws.com")


# --- Media plays where it is shown ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_csp_lets_media_play_from_the_pre_signed_origin_of_the_media_bucket(operator_client, settings):
    url = media_presigned_url(MediaFile(s3_key="whatsapp-media/x.mp4", content_type="video/mp4"))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))

    policy = operator_client.get("/dm/")["Content-Security-Policy"]

    media_src = next(d for d in policy.split(";") if d.strip().startswith("media-src")).split()
    assert origin in media_src and "'self'" in media_src


@pytest.mark.django_db
def test_inbound_video_and_audio_play_inline_in_the_conversation(viewer_client):
    from contacts.models import Contact
    from messaging.models import Direction, Message, MessageStatus

    contact = Contact.objects.create(name="Asha", phone="+919876543210", opt_in_whatsapp=True)
    for key, content_type in (("clip.mp4", "video/mp4"), ("note.ogg", "audio/ogg"), ("file.pdf", "application/pdf")):
        inbound = Message.objects.create(
            contact=contact, channel="whatsapp", direction=Direction.INBOUND, content="", status=MessageStatus.RECEIVED
        )
        MediaFile.objects.create(message=inbound, s3_key=f"whatsapp-media/{key}", content_type=content_type, size=10)

    page = viewer_client.get(f"/dm/{contact.pk}/").content.decode()

    assert re.search(r'<video class="media-preview" controls preload="metadata" src="[^"]*clip\.mp4', page)
    assert re.search(r'<audio controls preload="metadata" src="[^"]*note\.ogg', page)
    assert page.count("<video") == 1 and page.count("<audio") == 1
    assert re.search(r'<a href="[^"]*file\.pdf[^"]*"', page)  # a document stays a link
