"""The import job end to end: upload (page, admin) → S3 → worker → progress → report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import AuditLog
from conftest import wait_until
from contacts import import_jobs
from contacts.import_jobs import contact_import_job_run, contact_import_jobs_sweep
from contacts.models import ConsentEvent, Contact, ContactImportJob
from wecare import aws

HEADER = "name,phone,email,optInWhatsApp,optInSms,optInEmail\n"
GOOD_AND_BAD = (
    HEADER
    + "Asha,+919811111111,,true,,\n"  # row 1
    + "Twin,+91 98765 43210,,,,\n"  # row 2: taken by an existing contact
    + "Maybe,+919822222222,,yes,,\n"  # row 3: not a boolean
    + "Ravi,,ravi@example.com,,,\n"  # row 4
)


def upload(text: str | bytes, name: str = "contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, content_type="text/csv")


def s3_keys() -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=settings.REPORT_BUCKET, Prefix=settings.CONTACTS_IMPORT_PREFIX)
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.mark.django_db(transaction=True)
def test_a_worker_imports_the_uploaded_file_and_the_page_shows_progress_then_every_bad_row(
    reset_aws, operator_client, make_contact, celery_worker_factory
):
    make_contact(phone="+919876543210")
    celery_worker_factory(queues=[settings.QUEUE_DEFAULT], concurrency=1)

    response = operator_client.post("/contacts/import/", {"file": upload(GOOD_AND_BAD)})

    job = ContactImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/import/{job.pk}/"
    assert job.size == len(GOOD_AND_BAD.encode()) and job.created_by.email.startswith("operator")
    wait_until(lambda: ContactImportJob.objects.get().finished, timeout=60, message="the import job to finish")
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert (job.total_rows, job.rows_read, job.created, job.updated, job.rejected) == (4, 4, 2, 0, 2)
    assert Contact.objects.filter(phone="+919811111111", opt_in_whatsapp=True).exists()
    assert Contact.objects.filter(email="ravi@example.com").exists()
    assert ConsentEvent.objects.get(contact__phone="+919811111111").source == "import"
    assert s3_keys() == []  # the file holds personal data: not kept after the import

    page = operator_client.get(f"/contacts/import/{job.pk}/").content.decode()
    assert 'value="100"' in page and "hx-trigger" not in page  # finished: no more polling
    assert "Another contact already has this phone number." in page
    assert "&#x27;yes&#x27; is not a boolean" in page
    assert '<td data-label="Line">3</td>' in page and '<td data-label="Column">optInWhatsApp</td>' in page


@pytest.mark.django_db
def test_a_queued_job_polls_and_a_redelivered_task_does_nothing_twice(reset_aws, operator_client, make_contact):
    operator_client.post("/contacts/import/", {"file": upload(HEADER + "Asha,+919811111111,,,,\n")})
    job = ContactImportJob.objects.get()

    waiting = operator_client.get(f"/contacts/import/{job.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in waiting and "Queued" in waiting
    assert s3_keys() == [job.s3_key]

    assert contact_import_job_run(job_id=job.pk) is not None
    assert contact_import_job_run(job_id=job.pk) is None  # claimed already: SQS may deliver twice
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_before_anything_is_stored(reset_aws, operator_client, settings):
    settings.CONTACTS_IMPORT_MAX_BYTES = 1024
    big = HEADER + "".join(f"P{i},+9198{i:08d},,,,\n" for i in range(100))

    response = operator_client.post("/contacts/import/", {"file": upload(big)})

    html = response.content.decode()
    assert response.status_code == 200
    assert "the limit is 1,024 bytes" in html and "Nothing was imported." in html
    assert not ContactImportJob.objects.exists() and s3_keys() == [] and not Contact.objects.exists()


@pytest.mark.django_db
def test_a_file_that_is_not_a_csv_is_refused_clearly(reset_aws, operator_client):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

    response = operator_client.post("/contacts/import/", {"file": upload(png, "photo.png")})

    assert "is not a CSV text file" in response.content.decode()
    assert not ContactImportJob.objects.exists() and s3_keys() == []


@pytest.mark.django_db
def test_another_operator_cannot_see_my_import_job(reset_aws, operator_client, page_user):
    operator_client.post("/contacts/import/", {"file": upload(HEADER + "Asha,+919811111111,,,,\n")})
    job = ContactImportJob.objects.get()
    other = Client()
    other.force_login(page_user("Operator"))

    assert other.get(f"/contacts/import/{job.pk}/").status_code == 403


@pytest.mark.django_db
def test_the_admin_import_queues_a_job_and_its_page_shows_progress_and_the_report(reset_aws, page_user, make_contact):
    make_contact(phone="+919876543210")
    client = Client()
    client.force_login(page_user("Operator"))

    response = client.post("/admin/contacts/contact/import/", {"file": upload(GOOD_AND_BAD)})

    job = ContactImportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/contactimportjob/{job.pk}/change/")
    running = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in running
    contact_import_job_run(job_id=job.pk)
    done = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in done
    assert "4 of 4 rows read: 2 created, 0 updated, 0 unchanged, 2 rejected." in done
    assert "&#x27;yes&#x27; is not a boolean" in done


@pytest.mark.django_db
def test_a_viewer_cannot_upload_an_import(reset_aws, viewer_client):
    response = viewer_client.post("/contacts/import/", {"file": upload(HEADER + "Asha,+919811111111,,,,\n")})

    assert response.status_code == 403 and not ContactImportJob.objects.exists()


@pytest.mark.django_db
def test_the_export_page_streams_every_active_contact_formula_safe(operator_client, make_contact):
    make_contact(name="=cmd|' /C calc'!A0", phone="+919811111111")

    response = operator_client.get("/contacts/export/")

    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("contactId,name,phone,email,optInWhatsApp")
    assert "'=cmd|' /C calc'!A0" in lines[1] and len(lines) == 2
    assert AuditLog.objects.get(action="contacts.export").details["rows"] == 1


@pytest.mark.django_db
def test_a_viewer_cannot_export_from_the_page(viewer_client, make_contact):
    make_contact(name="Asha", phone="+919811111111")

    response = viewer_client.get("/contacts/export/")

    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="contacts.export").exists()


def _many_rows(count: int) -> str:
    return HEADER + "".join(f"P{i},+9198{i:08d},,,,\n" for i in range(count))


@pytest.mark.django_db
def test_a_job_whose_worker_died_is_failed_after_its_lease_with_its_counts_kept_and_the_file_deleted(
    reset_aws, operator_client, settings
):
    settings.CONTACTS_IMPORT_LEASE_SECONDS = 300
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(3))})
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(2))})
    dead, alive = ContactImportJob.objects.order_by("size")[1], ContactImportJob.objects.order_by("size")[0]
    now = timezone.now()
    # The dead worker committed a batch, then went silent; the live one saved progress a minute ago.
    ContactImportJob.objects.filter(pk=dead.pk).update(
        status="running", started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(seconds=301),
        total_rows=3, rows_read=2, created=2,
    )  # fmt: skip
    ContactImportJob.objects.filter(pk=alive.pk).update(
        status="running", started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(seconds=60)
    )

    assert contact_import_jobs_sweep(now=now) == 1
    assert contact_import_jobs_sweep(now=now) == 0  # idempotent: swept once

    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished and dead.finished_at == now
    assert "The worker running this import stopped (no progress for 300 seconds)" in dead.error
    assert (dead.total_rows, dead.rows_read, dead.created) == (3, 2, 2)  # the partial report stays
    assert ContactImportJob.objects.get(pk=alive.pk).status == "running"
    assert s3_keys() == [alive.s3_key]  # the dead job's file is gone, the live one's is still needed
    page = operator_client.get(f"/contacts/import/{dead.pk}/").content.decode()
    assert "The worker running this import stopped" in page and "hx-trigger" not in page


@pytest.mark.django_db
def test_a_worker_whose_job_was_swept_stops_at_the_next_batch_and_keeps_the_committed_ones(
    reset_aws, operator_client, settings, monkeypatch
):
    settings.CONTACTS_IMPORT_BATCH_SIZE = 10
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(30))})
    job = ContactImportJob.objects.get()
    real_save = import_jobs._save_progress
    saves = []

    def save_after_a_long_pause(job_id, progress):
        saves.append(progress.read)
        if len(saves) == 2:  # after the first batch the worker stalls past its lease and is swept
            later = timezone.now() + timedelta(seconds=settings.CONTACTS_IMPORT_LEASE_SECONDS + 1)
            assert contact_import_jobs_sweep(now=later) == 1
        real_save(job_id, progress)

    monkeypatch.setattr(import_jobs, "_save_progress", save_after_a_long_pause)

    finished = contact_import_job_run(job_id=job.pk)

    assert finished.status == "failed" and "no progress" in finished.error
    assert Contact.objects.count() == 10  # the first batch was committed; the worker stopped there
    assert len(saves) == 2
    assert s3_keys() == []


@pytest.mark.django_db
def test_the_uploaded_file_is_deleted_when_a_job_fails_too(reset_aws, operator_client, settings, monkeypatch):
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(3))})
    refused = ContactImportJob.objects.get()
    settings.CONTACTS_IMPORT_MAX_BYTES = 1024  # the limit shrank between the upload and the worker
    refused_big = HEADER + "".join(f"P{i},+9198{i:08d},,,,\n" for i in range(100))
    aws.client("s3").put_object(Bucket=settings.REPORT_BUCKET, Key=refused.s3_key, Body=refused_big.encode())

    assert contact_import_job_run(job_id=refused.pk).status == "failed"
    assert s3_keys() == []

    settings.CONTACTS_IMPORT_MAX_BYTES = 20 * 1024 * 1024
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(2))})
    crashed = ContactImportJob.objects.get(status="queued")

    def crash(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(import_jobs, "contacts_import", crash)
    with pytest.raises(RuntimeError):
        contact_import_job_run(job_id=crashed.pk)

    crashed.refresh_from_db()
    assert crashed.status == "failed" and "unexpected error (RuntimeError)" in crashed.error
    assert s3_keys() == []


@pytest.mark.django_db
def test_a_job_whose_task_message_was_lost_is_queued_again_once_per_lease(reset_aws, operator_client, settings):
    from wecare.celery import app

    settings.CONTACTS_IMPORT_LEASE_SECONDS = 300
    operator_client.post("/contacts/import/", {"file": upload(_many_rows(3))})  # no task sent: not committed
    lost = ContactImportJob.objects.get()
    app.conf.task_always_eager = True  # the re-sent task runs here, through the real task and service
    try:
        assert contact_import_jobs_sweep(now=lost.created_at + timedelta(seconds=299)) == 0
        assert ContactImportJob.objects.get().status == "queued"  # not yet: the message may only be slow
        ContactImportJob.objects.filter(pk=lost.pk).update(heartbeat_at=lost.created_at + timedelta(seconds=200))
        assert contact_import_jobs_sweep(now=lost.created_at + timedelta(seconds=400)) == 0
        assert ContactImportJob.objects.get().status == "queued"  # re-sent 200 s ago: once per lease

        contact_import_jobs_sweep(now=lost.created_at + timedelta(seconds=600))
    finally:
        app.conf.task_always_eager = False

    lost.refresh_from_db()
    assert lost.status == "done" and lost.created == 3
    assert Contact.objects.count() == 3 and s3_keys() == []


def test_beat_runs_the_import_job_sweeper_every_minute(settings):
    from wecare.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["contact-import-sweep"]
    assert entry["schedule"] == 60.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
