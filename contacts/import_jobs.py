"""Contact import jobs: the upload is checked and kept in S3, a Celery worker imports it.

``contact_import_job_create`` runs in the request (the page's or the admin's): it refuses a file
over the size limit before reading it, and a file that is not a CSV we can read before anything is
written; then it stores the file in S3 and queues the job on commit. ``contact_import_job_run`` is
the worker's side: it claims the job, imports the file with contacts.importing (progress written
to the job after every batch, each save renewing the job's lease) and stores the report.
``contact_import_jobs_sweep`` (beat, every minute) fails a running job whose lease expired: its
worker died mid-import. The batches it committed stay imported and its counts stay on the job. It
also queues again a job still queued after the lease (its task message was lost).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from contacts.importing import ImportFileError, ImportProgress, check_size, contacts_import, open_csv
from contacts.models import ContactImportJob
from wecare import aws

logger = logging.getLogger(__name__)

# The page shows this many rejected rows; the job keeps them all (and the command prints them all).
REPORT_ROWS_SHOWN = 1000


def _bucket() -> str:
    return settings.REPORT_BUCKET


def _read_upload(upload: UploadedFile) -> bytes:
    check_size(upload.size, name=upload.name or "The file")  # before a byte is read into memory
    data = b"".join(upload.chunks())
    check_size(len(data), name=upload.name or "The file")
    return data


def contact_import_job_create(*, upload: UploadedFile, actor, dry_run: bool = False) -> ContactImportJob:
    """Check the uploaded file, keep it in S3 and queue its import. ImportFileError if refused."""
    from contacts.tasks import contact_import_job_task  # the task module imports this one

    data = _read_upload(upload)
    name = (upload.name or "contacts.csv")[:255]
    rows = open_csv(data, name=name)  # encoding, separator and header now, while the user waits
    del rows
    job_id = uuid.uuid4()
    key = f"{settings.CONTACTS_IMPORT_PREFIX}{job_id}.csv"
    aws.client("s3").put_object(Bucket=_bucket(), Key=key, Body=data, ContentType="text/csv")
    job = ContactImportJob.objects.create(
        id=job_id,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        file_name=name,
        s3_key=key,
        size=len(data),
        dry_run=dry_run,
    )
    transaction.on_commit(lambda: contact_import_job_task.delay(str(job_id)))
    logger.info("contact import job %s queued (%s bytes, dry_run=%s)", job_id, len(data), dry_run)
    return job


class ImportJobLost(Exception):
    """The job is no longer this worker's: the sweeper failed it after its lease expired."""


def _save_progress(job_id, progress: ImportProgress) -> None:
    saved = ContactImportJob.objects.filter(pk=job_id, status=ContactImportJob.Status.RUNNING).update(
        heartbeat_at=timezone.now(),
        total_rows=progress.total,
        rows_read=progress.read,
        created=progress.created,
        updated=progress.updated,
        unchanged=progress.unchanged,
        rejected=progress.rejected,
    )
    if not saved:  # stop at this batch boundary: the job was failed, its report must not change under it
        raise ImportJobLost(str(job_id))


def contact_import_job_run(*, job_id) -> ContactImportJob | None:
    """The worker's side. Claims the job (queued → running), so a redelivered task does nothing."""
    now = timezone.now()
    claimed = ContactImportJob.objects.filter(pk=job_id, status=ContactImportJob.Status.QUEUED).update(
        status=ContactImportJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        logger.info("contact import job %s: already taken or finished", job_id)
        return None
    job = ContactImportJob.objects.select_related("created_by").get(pk=job_id)
    try:
        s3 = aws.client("s3")
        check_size(s3.head_object(Bucket=_bucket(), Key=job.s3_key)["ContentLength"], name=job.file_name)
        data = s3.get_object(Bucket=_bucket(), Key=job.s3_key)["Body"].read()
        result = contacts_import(
            rows=open_csv(data, name=job.file_name),
            actor=job.created_by,
            dry_run=job.dry_run,
            on_progress=lambda progress: _save_progress(job.pk, progress),
            job_id=str(job.pk),
        )
        _save_progress(job.pk, result)
    except ImportJobLost:
        logger.warning("contact import job %s: its lease expired and it was failed; this worker stops", job.pk)
        job.refresh_from_db()
        return job
    except ImportFileError as exc:
        _finish(job, status=ContactImportJob.Status.FAILED, error=f"{exc} Nothing was imported.")
        return job
    except Exception as exc:
        logger.exception("contact import job %s failed", job.pk)
        _finish(
            job,
            status=ContactImportJob.Status.FAILED,
            error=f"The import stopped on an unexpected error ({type(exc).__name__}); the rows counted as "
            "created or updated were kept, the rest were not imported. Importing the file again reports the "
            "kept rows as duplicates and imports the others.",
        )
        raise
    _finish(job, status=ContactImportJob.Status.DONE, bad_rows=[bad.as_dict() for bad in result.bad_rows])
    logger.info(
        "contact import job %s done: created=%s updated=%s rejected=%s",
        job.pk,
        result.created,
        result.updated,
        result.rejected,
    )
    return job


def _finish(job: ContactImportJob, *, status: str, error: str = "", bad_rows: list | None = None) -> None:
    ContactImportJob.objects.filter(pk=job.pk, status=ContactImportJob.Status.RUNNING).update(
        status=status, error=error, bad_rows=bad_rows or [], finished_at=timezone.now()
    )
    _delete_upload(job)
    job.refresh_from_db()


def _delete_upload(job: ContactImportJob) -> None:
    try:
        # The file holds personal data: it is not kept once the import is over.
        aws.client("s3").delete_object(Bucket=_bucket(), Key=job.s3_key)
    except Exception as exc:  # the report matters more than the clean-up
        logger.warning("contact import job %s: could not delete the uploaded file: %s", job.pk, type(exc).__name__)


LEASE_EXPIRED = (
    "The worker running this import stopped (no progress for {seconds} seconds). The batches counted as "
    "created or updated were kept; the rest of the file was not imported, and the list of rejected rows "
    "was lost with the worker. Importing the file again reports the kept rows as duplicates and imports "
    "the others."
)


def contact_import_jobs_sweep(*, now: datetime | None = None) -> int:
    """Fail every running job whose lease expired (its worker died); return how many. Idempotent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CONTACTS_IMPORT_LEASE_SECONDS)
    stale = ContactImportJob.objects.filter(status=ContactImportJob.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)  # null: claimed before leases
    )
    failed = 0
    for job in stale.only("pk", "s3_key"):
        # Conditional: a worker renewing its lease meanwhile, or another sweep, wins.
        if stale.filter(pk=job.pk).update(
            status=ContactImportJob.Status.FAILED,
            error=LEASE_EXPIRED.format(seconds=settings.CONTACTS_IMPORT_LEASE_SECONDS),
            finished_at=now,
        ):
            failed += 1
            _delete_upload(job)
            logger.warning("contact import job %s: lease expired, failed by the sweeper", job.pk)
    _requeue_forgotten(now, cutoff)
    return failed


def _requeue_forgotten(now: datetime, cutoff: datetime) -> int:
    """Queue again a job queued longer than the lease (its task message was lost, e.g. the broker was
    down at upload time). Harmless if the message was only slow: the claim lets one task run the job.
    ``heartbeat_at`` of a queued job is when it was last re-queued, so it is re-sent once per lease."""
    from contacts.tasks import contact_import_job_task  # the task module imports this one

    forgotten = ContactImportJob.objects.filter(status=ContactImportJob.Status.QUEUED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    requeued = 0
    for job_id in forgotten.values_list("pk", flat=True):
        if forgotten.filter(pk=job_id).update(heartbeat_at=now):
            contact_import_job_task.delay(str(job_id))
            requeued += 1
            logger.warning("contact import job %s: still queued after the lease, queued again", job_id)
    return requeued
