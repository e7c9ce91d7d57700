"""Send later: a confirmed job waits SCHEDULED in the database until beat starts it; reschedule and
cancel until then, through the services, the API (roles enforced) and the job page; all audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from bulk import scheduling
from bulk.errors import BulkInputError, BulkStateError
from bulk.models import BulkJob, BulkJobChunk, BulkRecipient, ChunkStatus, JobStatus, RecipientStatus
from bulk.services import BulkMessage, bulk_job_cancel, bulk_job_confirm, bulk_job_create
from bulk.tasks import bulk_scheduler_tick

pytestmark = pytest.mark.django_db


def _create(user, contacts, **kwargs) -> BulkJob:
    return bulk_job_create(
        user=user,
        channel="sms",
        message=BulkMessage(content="Our sale starts today"),
        contact_ids=[str(c.pk) for c in contacts],
        **kwargs,
    )


def test_a_local_time_is_read_in_the_given_time_zone_and_stored_in_utc():
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

    moment, name = scheduling.schedule_parse("2026-12-24T09:30", "Asia/Kolkata", now=now)

    assert (moment, name) == (datetime(2026, 12, 24, 4, 0, tzinfo=UTC), "Asia/Kolkata")


def test_without_a_time_zone_the_business_time_zone_is_used(settings):
    settings.BUSINESS_TIME_ZONE = "Europe/London"
    now = datetime(2026, 7, 1, tzinfo=UTC)

    moment, name = scheduling.schedule_parse("2026-07-02T09:00", now=now)

    assert (moment, name) == (datetime(2026, 7, 2, 8, 0, tzinfo=UTC), "Europe/London")  # BST is UTC+1


@pytest.mark.parametrize(
    ("when", "zone", "words"),
    [
        ("2020-01-01T09:00", "UTC", "has passed"),
        ("tomorrow at nine", "UTC", "is not a date and time"),
        ("2030-01-01T09:00", "Mars/Olympus", "is not a time zone"),
        ("2099-01-01T09:00", "UTC", "at most a year ahead"),
    ],
)
def test_a_bad_schedule_is_refused_with_a_clear_error_and_nothing_is_stored(operator, make_contacts, when, zone, words):
    contacts = make_contacts(3)

    with pytest.raises(BulkInputError) as raised:
        _create(operator, contacts, scheduled_for=when, time_zone=zone)

    assert raised.value.code == "INVALID_SCHEDULE"
    assert words in str(raised.value)
    assert not BulkJob.objects.exists()


def test_a_scheduled_job_waits_with_its_chunks_unqueued_until_beat_starts_it_once(operator, make_contacts):
    contacts = make_contacts(3)
    when = timezone.now() + timedelta(hours=2)

    job = _create(operator, contacts, scheduled_for=when.isoformat(), time_zone="Asia/Kolkata")

    assert job.status == JobStatus.SCHEDULED
    assert job.scheduled_for == when and job.time_zone == "Asia/Kolkata"
    assert job.confirmed_at is not None
    assert list(job.chunks.values_list("status", "queued_at")) == [(ChunkStatus.PENDING, None)]
    assert bulk_scheduler_tick() == {"started": 0, "resumed": 0}  # not due yet
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.SCHEDULED

    assert scheduling.scheduled_jobs_start_due(now=when + timedelta(seconds=1)) == [str(job.pk)]
    assert scheduling.scheduled_jobs_start_due(now=when + timedelta(seconds=2)) == []  # one start only

    job.refresh_from_db()
    assert job.status == JobStatus.PENDING
    assert BulkJobChunk.objects.get(job=job).status == ChunkStatus.QUEUED
    started = AuditLog.objects.get(action="bulk_job.start_scheduled")
    assert started.resource_id == str(job.pk) and started.details == {"by": "scheduler"}


def test_a_job_over_the_threshold_is_scheduled_when_it_is_confirmed(operator, make_contacts, settings):
    settings.BULK_CONFIRMATION_THRESHOLD = 2
    job = _create(operator, make_contacts(3))
    assert job.status == JobStatus.AWAITING_CONFIRMATION

    job = bulk_job_confirm(
        job_id=job.pk, user=operator, count=3, scheduled_for=f"{timezone.now().year + 1}-01-01T09:00", time_zone="UTC"
    )

    assert job.status == JobStatus.SCHEDULED
    confirm = AuditLog.objects.get(action="bulk_job.confirm")
    assert confirm.details["timeZone"] == "UTC" and confirm.details["scheduledFor"].endswith("09:00:00+00:00")


def test_a_scheduled_job_can_be_rescheduled_until_it_starts_and_each_change_is_audited(operator, make_contacts):
    job = _create(operator, make_contacts(2), scheduled_for=(timezone.now() + timedelta(hours=1)).isoformat())
    later = timezone.now() + timedelta(days=1)

    job = scheduling.bulk_job_reschedule(
        job_id=job.pk, user=operator, when=later.astimezone(UTC).replace(tzinfo=None).isoformat(), time_zone="UTC"
    )

    assert abs(job.scheduled_for - later) < timedelta(seconds=1)
    assert AuditLog.objects.get(action="bulk_job.reschedule").details["timeZone"] == "UTC"
    scheduling.scheduled_jobs_start_due(now=later + timedelta(seconds=1))
    with pytest.raises(BulkStateError):
        scheduling.bulk_job_reschedule(job_id=job.pk, user=operator, when=later + timedelta(days=1))


def test_cancelling_a_scheduled_job_cancels_every_recipient_and_beat_never_starts_it(operator, make_contacts):
    when = timezone.now() + timedelta(hours=1)
    job = _create(operator, make_contacts(2), scheduled_for=when)

    job = bulk_job_cancel(job_id=job.pk, user=operator)

    assert job.status == JobStatus.CANCELLED
    assert set(BulkRecipient.objects.filter(job=job).values_list("status", flat=True)) == {RecipientStatus.CANCELLED}
    assert scheduling.scheduled_jobs_start_due(now=when + timedelta(minutes=1)) == []
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_the_api_schedules_reschedules_and_cancels_and_a_viewer_is_refused_and_audited(
    operator, viewer, make_contacts, api_client
):
    contacts = make_contacts(2)
    when = (timezone.now() + timedelta(hours=3)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    client = api_client(operator)

    created = client.post(
        "/api/bulk/jobs",
        {"channel": "sms", "text": "Sale", "contactIds": [str(c.pk) for c in contacts],
         "scheduledFor": when.isoformat(), "timeZone": "UTC"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "SCHEDULED"
    assert body["timeZone"] == "UTC"
    assert body["scheduledFor"].startswith(when.isoformat())
    job_id = body["jobId"]

    denied = api_client(viewer).post(
        f"/api/bulk/jobs/{job_id}/schedule", {"scheduledFor": when.isoformat()}, format="json"
    )
    assert denied.status_code == 403
    assert AuditLog.objects.filter(user=viewer, action="forbidden").exists()

    later = when + timedelta(hours=8)  # read in Asia/Kolkata (UTC+5:30): still ahead
    moved = client.post(
        f"/api/bulk/jobs/{job_id}/schedule",
        {"scheduledFor": later.isoformat(), "timeZone": "Asia/Kolkata"},
        format="json",
    )
    assert moved.status_code == 200, moved.json()
    assert moved.json()["timeZone"] == "Asia/Kolkata"
    assert moved.json()["scheduledForLocal"].startswith(later.isoformat()[:16])

    bad = client.post(f"/api/bulk/jobs/{job_id}/schedule", {"scheduledFor": "2001-01-01T00:00"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_SCHEDULE")

    assert client.post(f"/api/bulk/jobs/{job_id}/cancel").json()["status"] == "CANCELLED"
    gone = client.post(f"/api/bulk/jobs/{job_id}/schedule", {"scheduledFor": later.isoformat()}, format="json")
    assert gone.status_code == 409


def test_the_job_page_shows_the_schedule_and_an_operator_reschedules_it(operator, viewer, make_contacts, client):
    job = _create(
        operator, make_contacts(2), scheduled_for=timezone.now() + timedelta(hours=5), time_zone="Asia/Kolkata"
    )
    client.force_login(viewer)
    page = client.get(f"/bulk/{job.pk}/").content.decode()
    assert 'data-testid="schedule"' in page and "Asia/Kolkata" in page
    assert 'data-testid="reschedule-form"' not in page  # a Viewer may not change it
    assert client.post(f"/bulk/{job.pk}/schedule/", {"scheduled_for": "2030-01-01T09:00"}).status_code == 403

    client.force_login(operator)
    page = client.get(f"/bulk/{job.pk}/").content.decode()
    assert 'data-testid="reschedule-form"' in page
    target = (timezone.now() + timedelta(days=2)).astimezone(UTC)
    answer = client.post(
        f"/bulk/{job.pk}/schedule/", {"scheduled_for": target.strftime("%Y-%m-%dT%H:%M"), "time_zone": "UTC"}
    )
    assert answer.status_code == 302
    job.refresh_from_db()
    assert job.scheduled_for == target.replace(second=0, microsecond=0)


def test_the_job_pages_confirmation_can_send_later_in_the_chosen_time_zone(operator, make_contacts, client, settings):
    settings.BULK_CONFIRMATION_THRESHOLD = 2
    job = _create(operator, make_contacts(3))
    client.force_login(operator)
    page = client.get(f"/bulk/{job.pk}/").content.decode()
    assert 'name="scheduled_for"' in page and f'value="{settings.BUSINESS_TIME_ZONE}"' in page
    later = timezone.now() + timedelta(days=3)

    answer = client.post(
        f"/bulk/{job.pk}/confirm/",
        {"count": "3", "scheduled_for": later.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"), "time_zone": "UTC"},
    )

    assert answer.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.time_zone) == (JobStatus.SCHEDULED, "UTC")
    assert job.scheduled_for == later.astimezone(UTC).replace(second=0, microsecond=0)
