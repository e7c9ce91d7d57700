"""Send later: a confirmed job waits SCHEDULED until its time, then a beat task starts it.

The schedule is a row (BulkJob.scheduled_for), not a delayed queue message: SQS delays cap at 15
minutes and a restarted worker or beat must not lose a job. Beat runs `bulk.tasks.bulk_scheduler_tick`
every BULK_SCHEDULER_SECONDS; it moves each due job SCHEDULED → PENDING with a conditional update (one
beat wins) and queues its chunks. Until that moment the job can be rescheduled or cancelled.

Times are given in the job's time zone (default BUSINESS_TIME_ZONE) and stored in UTC.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.services import audit_record
from bulk import execution
from bulk.errors import BulkInputError, BulkStateError
from bulk.models import BulkJob, JobStatus

logger = logging.getLogger(__name__)

INVALID_SCHEDULE = "INVALID_SCHEDULE"
# Further ahead than this is almost certainly a typo in the year.
MAX_AHEAD = timedelta(days=366)


def business_time_zone() -> str:
    return settings.BUSINESS_TIME_ZONE


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; BulkInputError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BulkInputError(
            f"{name!r} is not a time zone; use an IANA name such as Asia/Kolkata or Europe/London.",
            code=INVALID_SCHEDULE,
        ) from None


def schedule_parse(when: str | datetime, time_zone: str = "", *, now: datetime | None = None) -> tuple[datetime, str]:
    """(the moment in UTC, the time zone's name) from a local date-time (or one with its own offset).

    A time without an offset is read in ``time_zone`` (default the business's). The moment must be in
    the future and within a year; anything else is a BulkInputError with code INVALID_SCHEDULE.
    """
    name = (time_zone or "").strip() or business_time_zone()
    tz = zone(name)
    moment = when if isinstance(when, datetime) else parse_datetime(str(when or "").strip())
    if moment is None:
        raise BulkInputError(
            f"{when!r} is not a date and time; use e.g. 2026-12-24T09:30 (in {name}).", code=INVALID_SCHEDULE
        )
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=tz)
    moment = moment.astimezone(ZoneInfo("UTC"))
    now = now or timezone.now()
    if moment <= now:
        raise BulkInputError(
            f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({name}) has passed; choose a later time.", code=INVALID_SCHEDULE
        )
    if moment - now > MAX_AHEAD:
        raise BulkInputError("A job can be scheduled at most a year ahead.", code=INVALID_SCHEDULE)
    return moment, name


def local_time(job: BulkJob) -> datetime | None:
    """The job's scheduled moment in its own time zone (for pages and the API)."""
    if job.scheduled_for is None:
        return None
    return job.scheduled_for.astimezone(ZoneInfo(job.time_zone or business_time_zone()))


def bulk_job_reschedule(*, job_id, user, when: str | datetime, time_zone: str = "") -> BulkJob:
    """Move a SCHEDULED job to another time (or time zone); only before it starts."""
    moment, name = schedule_parse(when, time_zone)
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.SCHEDULED:
            raise BulkStateError(
                f"Only a scheduled job that has not started can be rescheduled; this one is {job.status}."
            )
        before = job.scheduled_for
        job.scheduled_for, job.time_zone = moment, name
        job.save(update_fields=["scheduled_for", "time_zone", "updated_at"])
        audit_record(
            user=user,
            action="bulk_job.reschedule",
            resource_type="bulk_job",
            resource_id=job.pk,
            details={"from": before.isoformat() if before else None, "to": moment.isoformat(), "timeZone": name},
        )
    return job


def scheduled_jobs_start_due(*, now: datetime | None = None) -> list[str]:
    """Start every SCHEDULED job whose time has come (beat calls this). Returns the ids started.

    SCHEDULED → PENDING is a conditional update, so two beats (or a beat and a cancel) never both win.
    A crash between the update and the queueing is repaired by the sweeper (chunks never queued).
    """
    now = now or timezone.now()
    started = []
    due = BulkJob.objects.filter(status=JobStatus.SCHEDULED, scheduled_for__lte=now).order_by("scheduled_for")
    for job_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            changed = BulkJob.objects.filter(pk=job_id, status=JobStatus.SCHEDULED).update(
                status=JobStatus.PENDING, updated_at=now
            )
            if not changed:
                continue  # cancelled or started by another beat meanwhile
            audit_record(
                user=None,
                action="bulk_job.start_scheduled",
                resource_type="bulk_job",
                resource_id=job_id,
                details={"by": "scheduler"},
            )
        execution.chunks_enqueue(job_id)
        logger.info("bulk job %s started at its scheduled time", job_id)
        started.append(str(job_id))
    return started
