"""Bulk job reports: JSON and CSV in the private report bucket, downloaded through pre-signed URLs.

``s3://{REPORT_BUCKET}/{REPORT_PREFIX}{jobId}-complete.json`` when a job finishes (COMPLETED or
FAILED), ``{jobId}-partial.json`` when it is cancelled; the CSV of the same rows sits beside it.
Writing is idempotent: the same job gives the same keys, and a rewrite (after a DLQ replay
finishes a failed job) replaces them.
"""

from __future__ import annotations

import csv
import io
import json
import re

from django.conf import settings
from django.utils import timezone

from bulk.execution import job_counts
from bulk.models import BulkJob, BulkRecipient, JobStatus
from wecare import aws
from wecare.spreadsheet import safe_cell

PRESIGNED_URL_SECONDS = 3600
CSV_FIELDS = ["recipientId", "contactId", "address", "status", "errorCode", "error", "messageId", "sentAt"]


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _csv_cell(value):
    """Formula-safe, except a validated E.164 phone, which holds no formula and stays usable as it is."""
    if isinstance(value, str) and _E164.match(value):
        return value
    return safe_cell(value)


def report_keys(job: BulkJob) -> tuple[str, str]:
    kind = "partial" if job.status == JobStatus.CANCELLED else "complete"
    base = f"{settings.REPORT_PREFIX}{job.pk}-{kind}"
    return f"{base}.json", f"{base}.csv"


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def report_rows(job: BulkJob):
    recipients = (
        BulkRecipient.objects.filter(job=job)
        .order_by("sequence", "id")
        .values_list("id", "contact_id", "address", "status", "error_code", "error_details", "message_id", "sent_at")
    )
    for rid, contact_id, address, status, code, details, message_id, sent_at in recipients.iterator(chunk_size=2000):
        yield {
            "recipientId": str(rid),
            "contactId": str(contact_id) if contact_id else None,
            "address": address,
            "status": status,
            "errorCode": code or None,
            "error": details or None,
            "messageId": str(message_id) if message_id else None,
            "sentAt": _iso(sent_at),
        }


def report_build(job: BulkJob) -> tuple[dict, list[dict]]:
    counts = job_counts(job.pk)
    started = job.started_at or job.confirmed_at or job.created_at
    finished = job.completed_at or job.cancelled_at or timezone.now()
    duration = max((finished - started).total_seconds(), 0.0)
    rows = list(report_rows(job))
    summary = {
        "jobId": str(job.pk),
        "channel": job.channel,
        "status": job.status,
        "totalRecipients": counts["total"],
        "sentCount": counts["sent"],
        "failedCount": counts["failed"],
        "cancelledCount": counts["cancelled"],
        "skippedCount": counts["skipped"],
        "unknownOutcomeCount": counts["unknown"],
        "createdAt": _iso(job.created_at),
        "startedAt": _iso(job.started_at),
        "completedAt": _iso(job.completed_at or job.cancelled_at),
        "createdBy": job.created_by.email if job.created_by_id else None,
        "duration": round(duration, 3),
        "throughput": round(counts["sent"] / duration, 3) if duration > 0 else None,
        "dryRun": settings.SEND_MODE == "DRY_RUN",
        "recipients": rows,
    }
    return summary, rows


def report_write(job: BulkJob) -> tuple[str, str]:
    """Write the JSON and CSV reports of a finished or cancelled job; returns their keys.

    ``job`` is taken as it is (bulk.execution.job_maybe_finish passes the job with its final status
    before committing it, and stores the keys in the same transaction).
    """
    summary, rows = report_build(job)
    json_key, csv_key = report_keys(job)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    # Addresses and provider errors can come from outside: no cell may run as a formula.
    writer.writerows({key: _csv_cell(value) for key, value in row.items()} for row in rows)
    s3 = aws.client("s3")
    # Private objects (the bucket blocks public access too); server-side encrypted.
    s3.put_object(
        Bucket=settings.REPORT_BUCKET,
        Key=json_key,
        Body=json.dumps(summary, indent=1).encode(),
        ContentType="application/json",
        ServerSideEncryption="AES256",
    )
    s3.put_object(
        Bucket=settings.REPORT_BUCKET,
        Key=csv_key,
        Body=buffer.getvalue().encode("utf-8"),
        ContentType="text/csv; charset=utf-8",
        ServerSideEncryption="AES256",
    )
    return json_key, csv_key


def report_urls(job: BulkJob, *, expires_in: int = PRESIGNED_URL_SECONDS) -> dict:
    """Pre-signed GET URLs of the job's report (JSON and CSV)."""
    s3 = aws.client("s3")

    def url(key: str, filename: str) -> str:
        return s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": settings.REPORT_BUCKET,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )

    return {
        "json": url(job.report_s3_key, job.report_s3_key.rsplit("/", 1)[-1]),
        "csv": url(job.report_csv_s3_key, job.report_csv_s3_key.rsplit("/", 1)[-1]),
        "jsonKey": job.report_s3_key,
        "csvKey": job.report_csv_s3_key,
        "expiresIn": expires_in,
    }
