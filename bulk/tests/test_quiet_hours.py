"""Quiet hours: recipients reached outside their allowed local window wait (PENDING, resume_at) and are
sent after it opens; they never fail for it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from bulk import execution, quiet_hours
from bulk.models import QUIET_HOURS, BulkJob, BulkJobChunk, BulkRecipient, ChunkStatus, JobStatus, RecipientStatus
from bulk.services import BulkMessage, bulk_job_create
from bulk.tasks import bulk_scheduler_tick

KOLKATA = ZoneInfo("Asia/Kolkata")
PROMOTIONAL_SMS = [{"channel": "sms", "category": "promotional", "from": "09:00", "until": "21:00"}]


def test_by_default_promotional_sms_is_allowed_only_from_nine_to_nine_and_other_messages_always(settings):
    settings.SMS_MESSAGE_TYPE = "PROMOTIONAL"
    rule = quiet_hours.rule_for("sms", "promotional")

    assert (rule.start.hour, rule.end.hour) == (9, 21)
    assert quiet_hours.rule_for("sms", "transactional") is None
    assert quiet_hours.rule_for("whatsapp", "promotional") is None


def test_an_indian_number_at_ten_at_night_resumes_at_nine_the_next_morning_india_time():
    rule = quiet_hours.rule_for("sms", "promotional")
    ten_pm = datetime(2026, 12, 5, 22, 0, tzinfo=KOLKATA)

    resume = quiet_hours.resume_at(rule, "+919600000001", ten_pm)

    assert resume == datetime(2026, 12, 6, 9, 0, tzinfo=KOLKATA)
    assert quiet_hours.resume_at(rule, "+919600000001", datetime(2026, 12, 5, 12, 0, tzinfo=KOLKATA)) is None


def test_the_time_zone_comes_from_the_numbers_country_even_when_its_prefix_has_none():
    # 7700 900xxx is the UK's drama range: no prefix zone, so the country's (Europe/London).
    assert [z.key for z in quiet_hours.zones_for_phone("+447700900123")] == ["Europe/London"]
    assert [z.key for z in quiet_hours.zones_for_phone("+14255550150")] == ["America/Los_Angeles"]


def test_a_number_spanning_several_zones_waits_until_the_window_is_open_in_all_of_them():
    rule = quiet_hours.rule_for("sms", "promotional")
    zones = quiet_hours.zones_for_phone("+18005550100")  # toll-free: every US zone
    assert len(zones) > 3
    early = datetime(2026, 12, 5, 9, 30, tzinfo=ZoneInfo("America/New_York"))

    resume = quiet_hours.resume_at(rule, "+18005550100", early)

    assert resume is not None
    assert all(rule.allows(resume.astimezone(tz).time()) for tz in zones)


def test_a_window_across_midnight_and_a_bad_setting_are_understood(settings):
    rule = quiet_hours.rules_parse([{"channel": "*", "category": "*", "from": "22:00", "until": "06:00"}])[0]
    assert rule.allows(datetime(2026, 1, 1, 23, 0).time()) and not rule.allows(datetime(2026, 1, 1, 12, 0).time())
    for bad in ({"channel": "sms"}, [{"channel": "fax", "category": "*", "from": "09:00", "until": "21:00"}],
                [{"channel": "sms", "category": "*", "from": "9am", "until": "21:00"}]):  # fmt: skip
        with pytest.raises(ValueError):
            quiet_hours.rules_parse(bad)
    settings.BULK_QUIET_HOURS = [{"channel": "sms", "category": "promotional", "from": "25:00", "until": "21:00"}]
    errors = [e.id for e in call_command_checks()]
    assert "bulk.E001" in errors


def call_command_checks():
    from django.core import checks

    return checks.run_checks(tags=["bulk"])


@pytest.mark.django_db(transaction=True)
def test_recipients_reached_in_quiet_hours_wait_and_are_sent_when_the_window_opens_never_failed(
    operator, make_contacts, settings, reset_aws
):
    settings.SMS_MESSAGE_TYPE = "PROMOTIONAL"
    settings.RATE_LIMIT_SMS = 1000.0
    # The window opens a few seconds from now in India: every recipient (+91…) is in quiet hours now.
    local_now = timezone.now().astimezone(KOLKATA)
    opens = local_now + timedelta(seconds=4)
    settings.BULK_QUIET_HOURS = [
        {"channel": "sms", "category": "promotional", "from": opens.strftime("%H:%M:%S"),
         "until": (local_now - timedelta(minutes=5)).strftime("%H:%M:%S")}
    ]  # fmt: skip
    contacts = make_contacts(5)
    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Sale today"),
        contact_ids=[str(c.pk) for c in contacts],
    )
    chunk = BulkJobChunk.objects.get(job=job)

    result = execution.chunk_process(chunk.pk)

    assert result.outcome == "paused"
    rows = BulkRecipient.objects.filter(job=job)
    assert set(rows.values_list("status", "error_code")) == {(RecipientStatus.PENDING, QUIET_HOURS)}
    resume = rows.first().resume_at
    assert abs(resume - opens.replace(microsecond=0).astimezone(UTC)) < timedelta(seconds=1)
    job.refresh_from_db()
    assert job.status == JobStatus.IN_PROGRESS and job.failed_count == 0 and job.pending_count == 5
    assert bulk_scheduler_tick()["resumed"] == 0  # not yet: nothing is queued before the window opens
    assert execution.chunk_process(chunk.pk).processed == 0  # a redelivery claims nobody early

    time.sleep(max(0.0, (resume - timezone.now()).total_seconds()) + 0.5)
    assert bulk_scheduler_tick()["resumed"] == 1
    assert BulkJobChunk.objects.get(pk=chunk.pk).status == ChunkStatus.QUEUED
    execution.chunk_process(chunk.pk)

    job = BulkJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.COMPLETED
    assert set(BulkRecipient.objects.filter(job=job).values_list("status", "error_code")) == {
        (RecipientStatus.SENT, "")
    }


@pytest.mark.django_db(transaction=True)
def test_transactional_sms_ignores_the_promotional_quiet_hours(operator, make_contacts, settings, reset_aws):
    settings.SMS_MESSAGE_TYPE = "TRANSACTIONAL"
    settings.RATE_LIMIT_SMS = 1000.0
    local_now = timezone.now().astimezone(KOLKATA)
    settings.BULK_QUIET_HOURS = [
        {"channel": "sms", "category": "promotional", "from": (local_now + timedelta(hours=1)).strftime("%H:%M"),
         "until": (local_now + timedelta(hours=2)).strftime("%H:%M")}
    ]  # fmt: skip
    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Your code"),
        contact_ids=[str(c.pk) for c in make_contacts(3)],
    )

    execution.chunk_process(BulkJobChunk.objects.get(job=job).pk)

    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.COMPLETED
