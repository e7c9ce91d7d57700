"""/api/bulk/jobs/: create with pre-flight, confirm, pause/resume/cancel, report, recipients, retry failed."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditLog
from bulk.models import OUTCOME_UNKNOWN, BulkJob, BulkRecipient, JobStatus, RecipientStatus
from messaging.tier import tier_reserve

pytestmark = pytest.mark.django_db

URL = "/api/bulk/jobs/"
PHONE_A = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]


def _create(client, contacts, **extra):
    body = {"channel": "whatsapp", "text": "Your report is ready", "contactIds": [str(c.pk) for c in contacts], **extra}
    return client.post(URL, body, format="json")


def test_an_operator_creates_a_job_and_gets_its_preflight_in_camel_case(operator, api_client, make_contacts, reset_aws):
    contacts = make_contacts(25)

    response = _create(api_client(operator), contacts)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "AWAITING_CONFIRMATION"
    assert body["preflight"]["willSend"] == 25 and body["preflight"]["confirmationRequired"] is True
    assert body["confirmation"] == {
        "required": True,
        "count": 25,
        "hint": f'POST /api/bulk/jobs/{body["jobId"]}/confirm with {{"count": 25}}',
    }
    assert body["progress"]["totalRecipients"] == 25 and body["progress"]["pendingCount"] == 25
    assert body["createdBy"] == operator.email


def test_confirmation_needs_the_exact_will_send_count(operator, api_client, make_contacts, reset_aws):
    client = api_client(operator)
    job_id = _create(client, make_contacts(30)).json()["jobId"]

    for wrong in (29, 31, 0):
        refused = client.post(f"{URL}{job_id}/confirm", {"count": wrong}, format="json")
        assert refused.status_code == 400
        assert refused.json()["code"] == "CONFIRMATION_MISMATCH" and refused.json()["willSend"] == 30
    assert not BulkJob.objects.get(pk=job_id).chunks.exists()
    assert client.post(f"{URL}{job_id}/confirm", {"count": "thirty"}, format="json").status_code == 400

    confirmed = client.post(f"{URL}{job_id}/confirm", {"count": 30}, format="json")

    assert confirmed.status_code == 200 and confirmed.json()["status"] == "PENDING"
    assert BulkJob.objects.get(pk=job_id).chunks.count() == 1
    again = client.post(f"{URL}{job_id}/confirm", {"count": 30}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"


def test_a_small_job_needs_no_confirmation(operator, api_client, make_contacts, reset_aws):
    response = _create(api_client(operator), make_contacts(20))

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING" and response.json()["confirmation"] is None


def test_a_csv_upload_reports_each_row_would_send_or_why_not(
    operator, api_client, make_contacts, make_contact, reset_aws
):
    known = make_contacts(2)
    opted_out = make_contact(phone="+919812345678", opt_ins={"whatsapp": False})
    national = known[1].phone.replace("+91", "0")  # typed the Indian national way
    rows = f"name,phone\nA,{known[0].phone}\nB,{national}\nC,+919812345678\nD,+919898989898\nE,12\nF,{known[0].phone}\n"
    upload = SimpleUploadedFile("list.csv", rows.encode(), content_type="text/csv")

    response = api_client(operator).post(
        URL, {"channel": "whatsapp", "text": "Hello", "csv": upload}, format="multipart"
    )

    assert response.status_code == 201, response.json()
    pre = response.json()["preflight"]
    assert (pre["totalRecipients"], pre["willSend"], pre["duplicatesRemoved"]) == (5, 2, 1)
    assert pre["byReason"] == {"ADDRESS_INVALID": 1, "CONTACT_NOT_FOUND": 1, "OPT_IN_REQUIRED": 1}
    job_id = response.json()["jobId"]
    skipped = api_client(operator).get(f"{URL}{job_id}/recipients/?status=SKIPPED").json()["results"]
    reasons = {row["address"]: (row["errorCode"], row["contactId"]) for row in skipped}
    assert reasons["+919812345678"] == ("OPT_IN_REQUIRED", str(opted_out.pk))
    assert reasons["+919898989898"] == ("CONTACT_NOT_FOUND", None)
    assert reasons["12"][0] == "ADDRESS_INVALID"


def test_recipients_given_two_ways_or_a_bad_filter_are_refused(operator, api_client, make_contacts, reset_aws):
    client = api_client(operator)
    contacts = make_contacts(2)

    both = _create(client, contacts, filter={"search": "bulk"})
    bad_filter = client.post(URL, {"channel": "sms", "text": "x", "filter": {"colour": "red"}}, format="json")
    not_a_uuid = client.post(URL, {"channel": "sms", "text": "x", "contactIds": ["abc"]}, format="json")

    assert both.status_code == 400 and "recipients" in both.json()
    assert bad_filter.status_code == 400 and bad_filter.json()["code"] == "INVALID_FILTER"
    assert not_a_uuid.status_code == 400 and not_a_uuid.json()["code"] == "INVALID_RECIPIENTS"
    assert not BulkJob.objects.exists()


def test_a_filter_selects_opted_in_contacts_matching_the_search(operator, api_client, make_contact, reset_aws):
    asha = make_contact(name="Asha Kumar", opt_ins={"sms": True})
    make_contact(name="Ravi Kumar", opt_ins={"sms": False})
    make_contact(name="Meena Iyer", opt_ins={"sms": True})

    response = api_client(operator).post(
        URL, {"channel": "sms", "text": "Hello", "filter": {"search": "kumar", "optIn": True}}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert list(BulkRecipient.objects.filter(job_id=response.json()["jobId"]).values_list("contact_id", flat=True)) == [
        asha.pk
    ]


def test_a_job_over_the_tier_is_rejected_with_the_tier_code(
    operator, api_client, make_contacts, approved_template, reset_aws, settings
):
    settings.WHATSAPP_TIER_LIMIT = 2
    tier_reserve(PHONE_A, "33333333-3333-4333-8333-000000000000")
    contacts = make_contacts(3, in_window=False)

    response = api_client(operator).post(
        URL,
        {
            "channel": "whatsapp",
            "templateName": "order_update",
            "templateLanguage": "en_US",
            "templateParameters": ["A", "1"],
            "contactIds": [str(c.pk) for c in contacts],
        },
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["code"] == "TIER_LIMIT"
    assert "3 to open, 1 left" in response.json()["detail"]
    assert response.json()["job"]["status"] == "REJECTED"


def test_a_viewer_reads_jobs_but_cannot_create_or_act_and_each_refusal_is_audited(
    operator, viewer, api_client, make_contacts, reset_aws
):
    contacts = make_contacts(3)
    job_id = _create(api_client(operator), contacts).json()["jobId"]
    client = api_client(viewer)

    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}{job_id}/").json()["progress"]["totalRecipients"] == 3
    assert client.get(f"{URL}{job_id}/recipients/").status_code == 200
    assert _create(client, contacts).status_code == 403
    for action in ("pause", "resume", "cancel", "retry-failed"):
        assert client.post(f"{URL}{job_id}/{action}", {}, format="json").status_code == 403
    assert client.post(f"{URL}{job_id}/confirm", {"count": 3}, format="json").status_code == 403
    assert AuditLog.objects.filter(action="forbidden", user=viewer).count() == 6
    assert api_client(None).get(URL).status_code in (401, 403)


def test_pause_resume_and_cancel_through_the_api(operator, api_client, make_contacts, reset_aws):
    client = api_client(operator)
    job_id = _create(client, make_contacts(5)).json()["jobId"]

    paused = client.post(f"{URL}{job_id}/pause")
    paused_again = client.post(f"{URL}{job_id}/pause")
    resumed = client.post(f"{URL}{job_id}/resume")
    cancelled = client.post(f"{URL}{job_id}/cancel")
    resumed_after_cancel = client.post(f"{URL}{job_id}/resume")

    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"
    assert paused_again.status_code == 409
    assert resumed.status_code == 200 and resumed.json()["status"] == "PENDING"
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["progress"]["cancelledCount"] == 5
    assert resumed_after_cancel.status_code == 409
    assert list(AuditLog.objects.filter(resource_id=job_id).order_by("timestamp").values_list("action", flat=True)) == [
        "bulk_job.create",
        "bulk_job.pause",
        "bulk_job.resume",
        "bulk_job.cancel",
    ]


def test_the_report_is_private_and_downloaded_through_presigned_urls(
    operator, viewer, api_client, make_contacts, reset_aws
):
    client = api_client(operator)
    job_id = _create(client, make_contacts(25)).json()["jobId"]
    not_yet = client.get(f"{URL}{job_id}/report")
    client.post(f"{URL}{job_id}/cancel")

    response = api_client(viewer).get(f"{URL}{job_id}/report")

    assert not_yet.status_code == 409 and not_yet.json()["code"] == "REPORT_NOT_READY"
    assert response.status_code == 200
    urls = response.json()
    assert urls["jsonKey"] == f"{django_settings.REPORT_PREFIX}{job_id}-partial.json"
    assert urls["csvKey"] == f"{django_settings.REPORT_PREFIX}{job_id}-partial.csv"
    report = requests.get(urls["json"], timeout=10).json()
    assert (report["jobId"], report["status"], report["cancelledCount"], len(report["recipients"])) == (
        job_id,
        "CANCELLED",
        25,
        25,
    )
    csv_text = requests.get(urls["csv"], timeout=10).text
    assert csv_text.splitlines()[0] == "recipientId,contactId,address,status,errorCode,error,messageId,sentAt"
    assert len(csv_text.splitlines()) == 26
    unsigned = requests.get(urls["json"].split("?")[0], timeout=10)
    assert unsigned.status_code == 403


def test_retry_failed_makes_a_new_job_of_the_failed_recipients_through_the_same_preflight(
    operator, api_client, make_contacts, reset_aws
):
    # given: a finished job where two recipients failed and one's outcome is unknown
    client = api_client(operator)
    contacts = make_contacts(6)
    job_id = _create(client, contacts).json()["jobId"]
    rows = list(BulkRecipient.objects.filter(job_id=job_id).order_by("sequence"))
    BulkRecipient.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(status=RecipientStatus.SENT)
    BulkRecipient.objects.filter(pk__in=[rows[3].pk, rows[4].pk]).update(
        status=RecipientStatus.FAILED, error_code="ValidationException"
    )
    BulkRecipient.objects.filter(pk=rows[5].pk).update(status=RecipientStatus.FAILED, error_code=OUTCOME_UNKNOWN)
    BulkJob.objects.filter(pk=job_id).update(status=JobStatus.COMPLETED, completed_at=timezone.now())

    retry = client.post(f"{URL}{job_id}/retry-failed", {}, format="json")
    with_unknown = client.post(f"{URL}{job_id}/retry-failed", {"includeUnknownOutcome": True}, format="json")

    assert retry.status_code == 201, retry.json()
    assert retry.json()["retryOf"] == job_id and retry.json()["recipientSource"] == "retry"
    assert retry.json()["text"] == "Your report is ready"
    assert set(BulkRecipient.objects.filter(job_id=retry.json()["jobId"]).values_list("contact_id", flat=True)) == {
        rows[3].contact_id,
        rows[4].contact_id,
    }
    assert with_unknown.json()["preflight"]["totalRecipients"] == 3


def test_retry_failed_needs_a_finished_job(operator, api_client, make_contacts, reset_aws):
    client = api_client(operator)
    job_id = _create(client, make_contacts(3)).json()["jobId"]

    response = client.post(f"{URL}{job_id}/retry-failed", {}, format="json")

    assert response.status_code == 409
