"""The admin (progress, paginated recipients, actions, report link) and `manage.py bulk_send_csv`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from bulk.models import BulkJob, JobStatus
from bulk.services import BulkMessage, bulk_job_cancel, bulk_job_create
from messaging.models import Message


def _job(user, contacts) -> BulkJob:
    return bulk_job_create(
        user=user, channel="whatsapp", message=BulkMessage(content="Hello"), contact_ids=[str(c.pk) for c in contacts]
    )


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_the_job_list_shows_status_and_progress(admin_client, operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(30))

    response = admin_client.get(reverse("admin:bulk_bulkjob_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert str(job.pk) in page and "Awaiting confirmation" in page
    assert "0 / 30" in page


@pytest.mark.django_db
def test_a_job_page_shows_its_recipients_fifty_at_a_time(admin_client, operator, make_contacts, reset_aws):
    contacts = make_contacts(120)
    job = _job(operator, contacts)
    url = reverse("admin:bulk_bulkjob_change", args=[job.pk])

    first = admin_client.get(url).content.decode()
    last = admin_client.get(url + "?recipients_page=3").content.decode()

    assert "recipients 1–50 of 120 (page 1 of 3)" in first
    assert contacts[0].phone in first and contacts[60].phone not in first
    assert "recipients 101–120 of 120 (page 3 of 3)" in last
    assert contacts[119].phone in last and contacts[0].phone not in last


@pytest.mark.django_db
def test_admin_actions_pause_and_cancel_through_the_services(admin_client, operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(10))
    changelist = reverse("admin:bulk_bulkjob_changelist")

    admin_client.post(changelist, {"action": "pause_jobs", "_selected_action": [str(job.pk)]})
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.PAUSED
    admin_client.post(changelist, {"action": "resume_jobs", "_selected_action": [str(job.pk)]})
    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.PENDING
    admin_client.post(changelist, {"action": "cancel_jobs", "_selected_action": [str(job.pk)]})
    response = admin_client.post(changelist, {"action": "pause_jobs", "_selected_action": [str(job.pk)]}, follow=True)

    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert "Only a pending or running job can be paused" in response.content.decode()


@pytest.mark.django_db
def test_the_report_link_redirects_to_a_presigned_url(admin_client, operator, make_contacts, reset_aws, settings):
    job = bulk_job_cancel(job_id=_job(operator, make_contacts(25)).pk, user=operator)

    response = admin_client.get(reverse("admin:bulk_bulkjob_report", args=[job.pk]) + "?format=csv")

    assert response.status_code == 302
    assert settings.REPORT_BUCKET in response["Location"]
    assert f"{job.pk}-partial.csv" in response["Location"] and "Signature" in response["Location"]


@pytest.mark.django_db
def test_a_viewer_cannot_act_on_jobs_in_the_admin(viewer, operator, make_contacts, reset_aws):
    job = _job(operator, make_contacts(10))
    client = Client()
    client.force_login(viewer)

    client.post(reverse("admin:bulk_bulkjob_changelist"), {"action": "cancel_jobs", "_selected_action": [str(job.pk)]})

    assert BulkJob.objects.get(pk=job.pk).status == JobStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_the_command_creates_confirms_and_runs_a_job_from_a_csv(operator, make_contacts, reset_aws, tmp_path, settings):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0
    contacts = make_contacts(30)
    path = tmp_path / "recipients.csv"
    path.write_text("phone\n" + "\n".join(c.phone for c in contacts) + "\n+919898989898\n")
    args = [str(path), "--user", operator.email, "--channel", "whatsapp", "--text", "Clinic closed Friday"]

    # without the count: nothing is queued, the pre-flight says what to confirm
    out = io.StringIO()
    call_command("bulk_send_csv", *args, stdout=out)
    assert "will send 30, will not send 1" in out.getvalue() and "CONTACT_NOT_FOUND: 1" in out.getvalue()
    assert "--confirm-count 30" in out.getvalue()
    assert Message.objects.count() == 0

    # a wrong count is refused
    with pytest.raises(CommandError, match="CONFIRMATION_MISMATCH"):
        call_command("bulk_send_csv", *args, "--confirm-count", "31", stdout=io.StringIO())

    # the right count: sent, followed to the end
    out = io.StringIO()
    call_command("bulk_send_csv", *args, "--confirm-count", "30", "--inline", stdout=out, stderr=io.StringIO())

    job = BulkJob.objects.filter(status=JobStatus.COMPLETED).get()
    assert (job.sent_count, job.skipped_count) == (30, 1)
    assert f"Job {job.pk} COMPLETED: sent 30" in out.getvalue()
    assert Message.objects.count() == 30


@pytest.mark.django_db
def test_the_command_refuses_a_user_who_may_not_send(viewer, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("phone\n+919812345678\n")

    with pytest.raises(CommandError, match="may not send bulk messages"):
        call_command("bulk_send_csv", str(path), "--user", viewer.email, "--channel", "sms", "--text", "x")
