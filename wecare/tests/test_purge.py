from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from botocore.stub import ANY, Stubber
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AuditLog
from conftest import wait_until
from contacts.models import Contact
from messaging.models import DLQMessage, MediaFile, Message
from wecare import aws, maintenance

pytestmark = pytest.mark.django_db


def _past():
    return timezone.now() - timedelta(minutes=1)


def _future():
    return timezone.now() + timedelta(days=1)


def _contact() -> Contact:
    return Contact.objects.create(name="Asha", email=f"{uuid.uuid4().hex}@example.com")


def _message(contact, *, expires_at, media_keys=()) -> Message:
    message = Message.objects.create(contact=contact, channel="whatsapp", content="hello", expires_at=expires_at)
    for key in media_keys:
        MediaFile.objects.create(message=message, s3_key=key, content_type="image/jpeg")
    return message


def _upload(settings, key: str) -> str:
    aws.client("s3").put_object(Bucket=settings.MEDIA_BUCKET, Key=key, Body=b"\xff\xd8 jpeg bytes")
    return key


def _exists(settings, key: str) -> bool:
    listed = aws.client("s3").list_objects_v2(Bucket=settings.MEDIA_BUCKET, Prefix=key)
    return any(obj["Key"] == key for obj in listed.get("Contents", []))


def _key(settings) -> str:
    return f"{settings.MEDIA_OUTGOING_PREFIX}{uuid.uuid4()}.jpg"


def _dlq(*, expires_at) -> DLQMessage:
    return DLQMessage.objects.create(
        original_message_id=uuid.uuid4().hex, queue_name="outbound-dlq", payload={"id": "x"}, expires_at=expires_at
    )


def test_it_deletes_expired_audit_entries_and_keeps_current_ones():
    expired = AuditLog.objects.create(action="contact.update", expires_at=_past())
    current = AuditLog.objects.create(action="contact.update")

    result = maintenance.purge_expired()

    assert result.audit_entries == 1
    assert not AuditLog.objects.filter(pk=expired.pk).exists()
    assert AuditLog.objects.filter(pk=current.pk).exists()


def test_single_audit_entries_still_refuse_to_be_deleted():
    entry = AuditLog.objects.create(action="contact.update", expires_at=_past())

    with pytest.raises(ValueError, match="retention purge"):
        entry.delete()


def test_it_deletes_expired_messages_with_their_media_rows_and_s3_objects(settings):
    contact = _contact()
    expired_key = _upload(settings, _key(settings))
    live_key = _upload(settings, _key(settings))
    expired = _message(contact, expires_at=_past(), media_keys=[expired_key])
    live = _message(contact, expires_at=_future(), media_keys=[live_key])

    result = maintenance.purge_expired()

    assert (result.messages, result.media_files, result.media_objects) == (1, 1, 1)
    assert not Message.objects.filter(pk=expired.pk).exists()
    assert not MediaFile.objects.filter(message_id=expired.pk).exists()
    assert not _exists(settings, expired_key)
    assert Message.objects.filter(pk=live.pk).exists()
    assert _exists(settings, live_key)
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_it_keeps_an_s3_object_that_a_live_message_still_uses(settings):
    contact = _contact()
    shared_key = _upload(settings, _key(settings))
    expired = _message(contact, expires_at=_past(), media_keys=[shared_key])
    live = _message(contact, expires_at=_future(), media_keys=[shared_key])

    result = maintenance.purge_expired()

    assert (result.messages, result.media_objects) == (1, 0)
    assert not Message.objects.filter(pk=expired.pk).exists()
    assert live.media.get().s3_key == shared_key
    assert _exists(settings, shared_key)


def test_it_deletes_expired_dead_letter_records():
    expired = _dlq(expires_at=_past())
    current = _dlq(expires_at=_future())

    result = maintenance.purge_expired()

    assert result.dlq_messages == 1
    assert list(DLQMessage.objects.filter(pk__in=[expired.pk, current.pk])) == [current]


def test_it_purges_a_backlog_larger_than_one_batch(settings):
    contact = _contact()
    keys = [_upload(settings, _key(settings)) for _ in range(3)]
    for key in keys:
        _message(contact, expires_at=_past(), media_keys=[key])
    _message(contact, expires_at=_past())
    for _ in range(5):
        AuditLog.objects.create(action="login.failure", expires_at=_past())

    result = maintenance.purge_expired(batch_size=2)

    assert (result.audit_entries, result.messages, result.media_files, result.media_objects) == (5, 4, 3, 3)
    assert not Message.objects.filter(contact=contact).exists()
    assert not any(_exists(settings, key) for key in keys)


def test_it_keeps_an_expired_message_whose_media_s3_refused_to_delete(settings):
    contact = _contact()
    refused_key, fine_key = _key(settings), _key(settings)
    refused = _message(contact, expires_at=_past(), media_keys=[refused_key])
    fine = _message(contact, expires_at=_past(), media_keys=[fine_key])
    s3 = aws.client("s3")

    with Stubber(s3) as stub:
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": refused_key, "Code": "AccessDenied", "Message": "Access Denied"}]},
            {
                "Bucket": settings.MEDIA_BUCKET,
                "Delete": {"Objects": [{"Key": k} for k in sorted([refused_key, fine_key])], "Quiet": True},
            },
        )
        result = maintenance.purge_expired()
        stub.assert_no_pending_responses()

    assert (result.messages, result.messages_kept) == (1, 1)
    assert Message.objects.filter(pk=refused.pk).exists()
    assert refused.media.get().s3_key == refused_key
    assert not Message.objects.filter(pk=fine.pk).exists()


def test_the_command_reports_what_it_purged(settings):
    contact = _contact()
    _message(contact, expires_at=_past(), media_keys=[_upload(settings, _key(settings))])
    AuditLog.objects.create(action="contact.update", expires_at=_past())
    _dlq(expires_at=_past())
    out = io.StringIO()

    call_command("purge_expired", stdout=out)

    assert out.getvalue().strip() == (
        "Purged 1 audit entries, 1 messages (1 media files, 1 S3 objects) and 1 dead-letter records."
    )


def test_the_command_fails_clearly_when_s3_is_down_and_keeps_the_messages(settings):
    contact = _contact()
    message = _message(contact, expires_at=_past(), media_keys=[_key(settings)])
    expired_audit = AuditLog.objects.create(action="contact.update", expires_at=_past())

    with Stubber(aws.client("s3")) as stub:
        stub.add_client_error("delete_objects", "ServiceUnavailable", "Please reduce your request rate.", 503,
                              expected_params={"Bucket": settings.MEDIA_BUCKET, "Delete": ANY})  # fmt: skip
        with pytest.raises(CommandError, match="S3 could not delete their media"):
            call_command("purge_expired", stdout=io.StringIO())

    assert Message.objects.filter(pk=message.pk).exists()
    assert not AuditLog.objects.filter(pk=expired_audit.pk).exists()


def test_the_command_refuses_a_batch_size_below_one():
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("purge_expired", "--batch-size", "0")


def test_the_command_has_help_text():
    from wecare.management.commands.purge_expired import Command

    assert "retention" in Command.help


@pytest.mark.django_db(transaction=True)  # the scheduler closes the database connection, as beat does
def test_beat_schedules_the_purge_daily_from_settings(settings):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from wecare.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired"]
    assert entry["task"] in app.tasks

    DatabaseScheduler(app=app)  # what `celery beat` does at start-up

    task = PeriodicTask.objects.get(name="purge-expired")
    assert task.task == "wecare.purge_expired"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("17", "3", "*")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_purge_sent_through_sqs(settings, reset_aws, celery_worker_factory):
    from wecare.tasks import purge_expired

    contact = _contact()
    key = _upload(settings, _key(settings))
    expired = _message(contact, expires_at=_past(), media_keys=[key])
    live = _message(contact, expires_at=_future())
    audit = AuditLog.objects.create(action="contact.update", expires_at=_past())
    dlq = _dlq(expires_at=_past())
    worker = celery_worker_factory(queues=[settings.QUEUE_DEFAULT])

    purge_expired.delay()

    wait_until(
        lambda: (
            not Message.objects.filter(pk=expired.pk).exists()
            and not AuditLog.objects.filter(pk=audit.pk).exists()
            and not DLQMessage.objects.filter(pk=dlq.pk).exists()
        ),
        timeout=60,
        message="the worker to purge expired rows",
    )
    assert Message.objects.filter(pk=live.pk).exists()
    assert not _exists(settings, key)
    wait_until(lambda: "wecare.purge_expired" in worker.log() and "succeeded" in worker.log(), timeout=30,
               message="the worker to log the task")  # fmt: skip
