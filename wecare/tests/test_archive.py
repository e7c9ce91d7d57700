"""Retention with an archive: archive → verify → purge → restore, on moto's S3 over HTTP."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AuditLog
from contacts.models import Contact, ContactImportJob
from messaging.models import DLQMessage, InboundEvent, Message
from wecare import alerts, archive, aws, maintenance
from wecare.tests.log_capture import captured_logs

pytestmark = pytest.mark.django_db


def _day_ago(days: int):
    return timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days)


def _contact() -> Contact:
    return Contact.objects.create(name="Archived", email=f"{uuid.uuid4().hex}@example.com")


def _object(settings, key: str) -> tuple[list[dict], dict]:
    response = aws.client("s3").get_object(Bucket=settings.ARCHIVE_BUCKET, Key=key)
    raw = gzip.decompress(response["Body"].read())
    return [json.loads(line) for line in raw.decode().splitlines()], response["Metadata"] | {
        "actual_sha256": hashlib.sha256(raw).hexdigest()
    }


@pytest.fixture
def archive_prefix(settings):
    """A prefix of its own per test: archive objects never carry over between tests."""
    settings.ARCHIVE_PREFIX = f"archive-test-{uuid.uuid4().hex[:8]}/"
    return settings.ARCHIVE_PREFIX


def test_expired_rows_are_archived_verified_and_purged_then_restored(settings, archive_prefix):
    # given: a message created 31 days ago (expired), one created today (live), and an expired audit entry
    contact = _contact()
    created = _day_ago(31)
    old = Message.objects.create(
        contact=contact, channel="sms", content="old news", created_at=created, expires_at=created + timedelta(days=30)
    )
    live = Message.objects.create(contact=contact, channel="sms", content="fresh")
    audit = AuditLog.objects.create(action="contact.update", timestamp=_day_ago(181), expires_at=_day_ago(1))

    # when
    result = maintenance.purge_expired()

    # then: archived one object per table per day, verified, and exactly those rows deleted
    assert result.archived == {"accounts.auditlog": 1, "messaging.message": 1}
    assert (result.messages, result.audit_entries, result.archive_failures) == (1, 1, [])
    assert not Message.objects.filter(pk=old.pk).exists() and Message.objects.filter(pk=live.pk).exists()
    key = f"{archive_prefix}messaging.message/{created:%Y/%m/%d}.jsonl.gz"
    rows, meta = _object(settings, key)
    assert [row["pk"] for row in rows] == [str(old.pk)]
    assert rows[0]["model"] == "messaging.message" and rows[0]["fields"]["content"] == "old news"
    assert meta["count"] == "1" and meta["sha256"] == meta["actual_sha256"]
    audit_rows, _ = _object(settings, f"{archive_prefix}accounts.auditlog/{_day_ago(181):%Y/%m/%d}.jsonl.gz")
    assert [row["pk"] for row in audit_rows] == [str(audit.pk)]

    # and: the restore command brings the day back, held for a week
    out = io.StringIO()
    call_command("restore_archive", "messaging.message", f"{created:%Y-%m-%d}", stdout=out)
    assert "Restored 1 row(s) of messaging.message" in out.getvalue()
    restored = Message.objects.get(pk=old.pk)
    assert (restored.content, restored.contact_id) == ("old news", contact.pk)
    assert restored.expires_at > timezone.now() + timedelta(days=6)
    # restoring again changes nothing
    out = io.StringIO()
    call_command("restore_archive", "messaging.message", f"{created:%Y-%m-%d}", stdout=out)
    assert "Restored 0 row(s)" in out.getvalue() and "1 were already there" in out.getvalue()


def test_a_second_night_merges_into_the_days_object_without_duplicates(settings, archive_prefix):
    contact = _contact()
    created = _day_ago(31)
    first = Message.objects.create(
        contact=contact, channel="sms", content="a", created_at=created, expires_at=_day_ago(1)
    )
    maintenance.purge_expired()
    second = Message.objects.create(
        contact=contact,
        channel="sms",
        content="b",
        created_at=created + timedelta(hours=5),
        expires_at=timezone.now() - timedelta(minutes=1),
    )

    maintenance.purge_expired()

    rows, meta = _object(settings, f"{archive_prefix}messaging.message/{created:%Y/%m/%d}.jsonl.gz")
    assert sorted(row["pk"] for row in rows) == sorted([str(first.pk), str(second.pk)])
    assert meta["count"] == "2" and meta["sha256"] == meta["actual_sha256"]


def test_a_failed_archive_deletes_nothing_and_alerts(settings, archive_prefix, monkeypatch):
    # given: the archive bucket does not exist (a misconfiguration, or S3 refusing)
    settings.ARCHIVE_BUCKET = f"missing-bucket-{uuid.uuid4().hex[:8]}"
    settings.ENVIRONMENT = f"test-{uuid.uuid4().hex[:8]}"
    contact = _contact()
    message = Message.objects.create(contact=contact, channel="sms", content="x", expires_at=_day_ago(1))
    dlq = DLQMessage.objects.create(
        original_message_id=uuid.uuid4().hex, queue_name="outbound-dlq", payload={}, expires_at=_day_ago(1)
    )
    published = []
    monkeypatch.setattr(
        alerts, "alert_raise", lambda kind, **kw: published.append(kind) or True
    )  # the real alert path is tested in test_alerts

    with captured_logs() as captured:
        result = maintenance.purge_expired()

    assert Message.objects.filter(pk=message.pk).exists() and DLQMessage.objects.filter(pk=dlq.pk).exists()
    assert (result.messages, result.dlq_messages) == (0, 0)
    assert len(result.archive_failures) == 2
    assert sorted(published) == ["archive-failed:messaging.dlqmessage", "archive-failed:messaging.message"]
    assert any("row(s) are kept" in r["message"] for r in captured.records())


def test_an_archive_that_does_not_read_back_as_written_deletes_nothing(settings, archive_prefix, monkeypatch):
    contact = _contact()
    message = Message.objects.create(contact=contact, channel="sms", content="x", expires_at=_day_ago(1))
    real_read = archive.archive_read
    calls = []

    def tampered(key):
        calls.append(key)
        found = real_read(key)
        if found is not None and len(calls) > 1:  # the read-back after the write: lose a row
            rows, obj = found
            return rows[:-1], archive.ArchiveObject(key=obj.key, count=obj.count, sha256=obj.sha256)
        return found

    monkeypatch.setattr(archive, "archive_read", tampered)
    monkeypatch.setattr(alerts, "alert_raise", lambda kind, **kw: True)

    result = maintenance.purge_expired()

    assert Message.objects.filter(pk=message.pk).exists()
    assert result.messages == 0 and "missing from the stored object" in result.archive_failures[0]


def test_inbound_event_payloads_go_after_30_days_but_pending_ones_stay(settings, archive_prefix):
    old_done = InboundEvent.objects.create(
        sns_message_id=uuid.uuid4().hex, topic_arn="arn", body={"x": 1}, status="processed", received_at=_day_ago(31)
    )
    old_pending = InboundEvent.objects.create(
        sns_message_id=uuid.uuid4().hex, topic_arn="arn", body={"x": 2}, status="pending", received_at=_day_ago(31)
    )
    recent = InboundEvent.objects.create(sns_message_id=uuid.uuid4().hex, topic_arn="arn", body={}, status="processed")

    result = maintenance.purge_expired()

    assert result.inbound_events == 1
    assert set(
        InboundEvent.objects.filter(pk__in=[old_done.pk, old_pending.pk, recent.pk]).values_list("pk", flat=True)
    ) == {
        old_pending.pk,
        recent.pk,
    }


def test_the_restore_command_prints_a_day_and_refuses_a_missing_one(settings, archive_prefix):
    dlq = DLQMessage.objects.create(
        original_message_id="orig-1", queue_name="outbound-dlq", payload={"k": "v"}, created_at=_day_ago(8),
        expires_at=_day_ago(1),
    )  # fmt: skip
    maintenance.purge_expired()
    out = io.StringIO()

    call_command("restore_archive", "messaging.dlqmessage", f"{_day_ago(8):%Y-%m-%d}", "--print", stdout=out)

    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["pk"] == str(dlq.pk) and not DLQMessage.objects.filter(pk=dlq.pk).exists()
    with pytest.raises(CommandError, match="no archive"):
        call_command("restore_archive", "messaging.dlqmessage", f"{date(2001, 1, 1):%Y-%m-%d}", "--print")
    with pytest.raises(CommandError, match="not a date"):
        call_command("restore_archive", "messaging.dlqmessage", "yesterday")


def test_the_archive_key_is_one_object_per_table_per_day(settings):
    assert archive.archive_key("messaging.message", date(2026, 11, 5)) == (
        f"{settings.ARCHIVE_PREFIX}messaging.message/2026/11/05.jsonl.gz"
    )


def test_import_jobs_are_archived_and_purged_30_days_after_they_end_with_any_leftover_upload(settings, archive_prefix):
    s3 = aws.client("s3")

    def job(status: str, days: int, *, finished: bool = True) -> ContactImportJob:
        key = f"{settings.CONTACTS_IMPORT_PREFIX}{uuid.uuid4()}.csv"
        return ContactImportJob.objects.create(
            file_name="contacts.csv", s3_key=key, size=10, status=status, created_at=_day_ago(days),
            finished_at=_day_ago(days) if finished else None, bad_rows=[{"line": 3, "reason": "not a boolean"}],
        )  # fmt: skip

    old_done = job("done", 31)
    s3.put_object(Bucket=settings.REPORT_BUCKET, Key=old_done.s3_key, Body=b"name,phone\n")  # a delete that failed
    old_never_ran = job("queued", 31, finished=False)
    old_running = job("running", 31, finished=False)  # the sweeper's, not the purge's
    recent = job("failed", 5)

    result = maintenance.purge_expired()

    assert result.import_jobs == 2
    left = set(ContactImportJob.objects.values_list("pk", flat=True))
    assert left == {old_running.pk, recent.pk}
    listing = s3.list_objects_v2(Bucket=settings.REPORT_BUCKET, Prefix=old_done.s3_key)
    assert listing.get("KeyCount", 0) == 0  # the personal data in the upload went with its job
    rows, _ = _object(settings, archive.archive_key("contacts.contactimportjob", _day_ago(31).date()))
    assert {row["pk"] for row in rows} == {str(old_done.pk), str(old_never_ran.pk)}
    assert rows[0]["fields"]["bad_rows"] == [{"line": 3, "reason": "not a boolean"}]  # the report is archived
    assert maintenance.purge_expired().import_jobs == 0  # idempotent
