"""A bulk report CSV opened in a spreadsheet runs nothing: addresses and provider errors that start
like a formula are shown as text, while an E.164 phone stays as it is."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.utils import timezone

from bulk.models import BulkJob, BulkRecipient, JobStatus, RecipientSource, RecipientStatus
from bulk.reports import report_write
from wecare import aws

pytestmark = pytest.mark.django_db


def test_the_report_csv_neutralises_formulas_and_keeps_phones(reset_aws):
    job = BulkJob.objects.create(
        channel="email", recipient_source=RecipientSource.CSV, status=JobStatus.COMPLETED, completed_at=timezone.now()
    )
    BulkRecipient.objects.create(job=job, sequence=1, address="+919876543210", status=RecipientStatus.SENT)
    BulkRecipient.objects.create(
        job=job,
        sequence=2,
        address="=cmd|' /C calc'!A0@example.com",
        status=RecipientStatus.FAILED,
        error_code="PROVIDER",
        error_details='@SUM(1+1)*cmd|" /C calc"!A0',
    )

    _, csv_key = report_write(job)

    body = aws.client("s3").get_object(Bucket=settings.REPORT_BUCKET, Key=csv_key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["address"] == "+919876543210"
    assert rows[1]["address"] == "'=cmd|' /C calc'!A0@example.com"
    assert rows[1]["error"] == '\'@SUM(1+1)*cmd|" /C calc"!A0'
