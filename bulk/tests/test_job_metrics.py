"""The metrics a bulk job produces (wecare.metrics, EMF on the log stream), checked value by value
against the job's own counters and against the EMF specification."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber
from django.conf import settings as django_settings

from bulk import execution
from bulk.models import JobStatus
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create
from wecare import aws
from wecare.tests.emf_spec import assert_valid_emf
from wecare.tests.log_capture import captured_logs

pytestmark = pytest.mark.django_db(transaction=True)

PHONE_A = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]


@pytest.fixture(autouse=True)
def fast_limits(settings):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0


def test_a_bulk_job_emits_its_sends_failures_duration_and_throughput_with_the_right_values(
    operator, make_contacts, reset_aws, settings
):
    # given: a LIVE job of 5 against a stubbed provider that refuses the third number
    settings.SEND_MODE = "LIVE"
    settings.BULK_SEND_THREADS = 1  # the stub answers in order
    contacts = make_contacts(5)
    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(origination_phone_number_id=PHONE_A, content="Your report is ready"),
        contact_ids=[str(c.pk) for c in contacts],
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=operator, count=job.preflight["willSend"])
    client = aws.client("socialmessaging", max_attempts=1)
    expected = {"originationPhoneNumberId": PHONE_A, "message": ANY, "metaApiVersion": ANY}

    # when
    with captured_logs() as captured, Stubber(client) as stub:
        for n in range(5):
            if n == 2:
                stub.add_client_error(
                    "send_whatsapp_message",
                    service_error_code="ValidationException",
                    service_message="Recipient phone number not valid",
                    http_status_code=400,
                    expected_params=expected,
                    response_meta={"RequestId": "aws-req-refused"},
                )
            else:
                stub.add_response("send_whatsapp_message", {"messageId": f"aws-{n}"}, expected)
        for chunk_id in job.chunks.order_by("sequence").values_list("pk", flat=True):
            execution.chunk_process(chunk_id)
        stub.assert_no_pending_responses()

    # then: every line is valid EMF, and the values are the job's own
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.failed_count) == (JobStatus.COMPLETED, 4, 1)
    for line in captured.emf():
        assert_valid_emf(line)
    assert captured.metric_values("BulkRecipientsSent", Channel="whatsapp", Environment="test") == [4]
    assert captured.metric_values("BulkRecipientsFailed", Channel="whatsapp") == [1]
    assert sum(captured.metric_values("MessagesSent", Channel="whatsapp")) == 4
    assert sum(captured.metric_values("MessagesFailed", Channel="whatsapp")) == 1
    assert len(captured.metric_values("ProviderLatency", Channel="whatsapp")) == 5
    (duration,) = captured.metric_values("BulkJobDuration", Channel="whatsapp")
    expected_duration = (job.completed_at - job.started_at).total_seconds()
    assert duration == pytest.approx(expected_duration, abs=0.01)
    (throughput,) = captured.metric_values("BulkJobThroughput", Channel="whatsapp")
    assert throughput == pytest.approx(4 / expected_duration, rel=0.01)
    # the refused send's log line carries the job id (from the chunk's thread) and the provider's request id
    (error,) = [r for r in captured.records() if r.get("providerRequestId") == "aws-req-refused"]
    assert error["bulkJobId"] == str(job.pk) and error["errorType"] == "ValidationException"
