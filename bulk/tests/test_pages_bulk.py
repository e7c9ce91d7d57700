"""The bulk pages through Django's test client: wizard, pre-flight, confirmation, actions, roles."""

from __future__ import annotations

import itertools
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from bulk.models import BulkJob, JobStatus
from contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def contacts(db):
    numbers = itertools.count(1)

    def make(n: int, *, opted_in: bool = True, prefix: str = "Bulk"):
        return [
            Contact.objects.create(name=f"{prefix} {i}", phone=f"+9190000{next(numbers):05d}", opt_in_sms=opted_in)
            for i in range(n)
        ]

    return make


def create(client, follow: bool = False, **fields):
    data = {"channel": "sms", "source": "filter", "search": "", "kind": "text", "text": "Sale today", **fields}
    return client.post("/bulk/new/", data, follow=follow)


def test_a_small_job_is_checked_and_queued_at_once(operator_client, contacts):
    contacts(3)
    contacts(2, opted_in=False, prefix="Quiet")

    response = create(operator_client, include_not_opted_in="on")

    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/bulk/{job.pk}/"
    assert job.status == JobStatus.PENDING
    page = operator_client.get(f"/bulk/{job.pk}/").content.decode()
    assert 'data-testid="will-send">3<' in page
    assert "OPT_IN_REQUIRED" in page and "has not opted in to this channel" in page
    assert 'data-testid="confirm"' not in page


def test_a_small_job_can_be_sent_later_from_the_wizard(operator_client, contacts):
    contacts(3)

    later = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("Asia/Kolkata")).replace(second=0, microsecond=0)

    response = create(operator_client, scheduled_for=f"{later:%Y-%m-%dT%H:%M}", time_zone="Asia/Kolkata")

    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert job.status == JobStatus.SCHEDULED and job.time_zone == "Asia/Kolkata"
    assert job.scheduled_for == later


def test_a_send_later_time_the_wizard_cannot_read_keeps_the_form(operator_client, contacts):
    contacts(1)

    response = create(operator_client, scheduled_for="24/12 morning", time_zone="Asia/Kolkata")

    assert response.status_code == 200 and not BulkJob.objects.exists()
    assert 'value="24/12 morning"' in response.content.decode()


def test_above_the_threshold_the_exact_count_must_be_confirmed(operator_client, contacts):
    contacts(21)
    create(operator_client)
    job = BulkJob.objects.get()
    page = operator_client.get(f"/bulk/{job.pk}/").content.decode()

    wrong = operator_client.post(f"/bulk/{job.pk}/confirm/", {"count": "20"}, follow=True)
    job.refresh_from_db()
    status_after_wrong = job.status
    right = operator_client.post(f"/bulk/{job.pk}/confirm/", {"count": "21"})

    job.refresh_from_db()
    assert 'data-testid="confirm"' in page and "Send to 21 recipients" in page
    assert status_after_wrong == JobStatus.AWAITING_CONFIRMATION
    assert "Confirm with the number of recipients the pre-flight says will be sent to: 21" in wrong.content.decode()
    assert right.status_code == 302 and job.status == JobStatus.PENDING


def test_a_request_nobody_would_receive_is_explained(operator_client, contacts):
    contacts(2, opted_in=False)

    response = create(operator_client, include_not_opted_in="on", follow=True)

    job = BulkJob.objects.get()
    assert job.status == JobStatus.REJECTED
    assert "None of the recipients would receive this message" in response.content.decode()


def test_bad_input_keeps_the_form_and_says_what_is_wrong(operator_client, contacts):
    contacts(1)

    response = create(operator_client, text="")

    assert response.status_code == 200
    assert "An SMS bulk message needs text." in response.content.decode()
    assert not BulkJob.objects.exists()


def test_pause_resume_and_cancel_go_through_the_services(operator_client, contacts):
    contacts(2)
    create(operator_client)
    job = BulkJob.objects.get()

    operator_client.post(f"/bulk/{job.pk}/pause/")
    job.refresh_from_db()
    paused = job.status
    operator_client.post(f"/bulk/{job.pk}/resume/")
    job.refresh_from_db()
    resumed = job.status
    operator_client.post(f"/bulk/{job.pk}/cancel/")
    job.refresh_from_db()

    assert (paused, resumed, job.status) == (JobStatus.PAUSED, JobStatus.PENDING, JobStatus.CANCELLED)
    assert job.cancelled_count == 2


def test_a_viewer_sees_jobs_but_no_controls_and_is_refused_if_forced(viewer_client, operator_client, contacts):
    contacts(2)
    create(operator_client)
    job = BulkJob.objects.get()

    listing = viewer_client.get("/bulk/").content.decode()
    detail = viewer_client.get(f"/bulk/{job.pk}/").content.decode()
    forced_new = create(viewer_client)
    forced_pause = viewer_client.post(f"/bulk/{job.pk}/pause/")

    assert "New bulk message" not in listing and str(job.pk) in listing
    assert ">Pause<" not in detail and "Cancel the job" not in detail
    assert forced_new.status_code == 403 and forced_pause.status_code == 403
    assert BulkJob.objects.count() == 1 and BulkJob.objects.get().status == JobStatus.PENDING
    assert AuditLog.objects.filter(action="forbidden").count() == 2
