"""Structured logs: JSON lines, correlation ids from a request to a real worker, required events, masking."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from botocore.stub import Stubber
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.services import user_create
from conftest import wait_until
from contacts.models import Contact
from messaging.channels import ChannelError, ProviderRequest, execute, provider_client
from messaging.safety import SafetyRefusal, SendRequest, safety_check
from wecare import logs
from wecare.tests.log_capture import captured_logs

PASSWORD = "correct horse battery staple 42"


def test_every_log_line_is_one_json_object_with_time_level_logger_and_message():
    with captured_logs() as captured:
        logging.getLogger("wecare.test").warning("disk %s is %d%% full", "/data", 91)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("wecare.test").exception("it failed")

    first, second = captured.records()
    assert first["level"] == "WARNING" and first["logger"] == "wecare.test"
    assert first["message"] == "disk /data is 91% full"
    assert first["time"].startswith("20") and first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["stackTrace"]
    assert all("\n" not in line for line in captured.lines())


def test_bound_ids_appear_on_every_line_until_the_block_ends():
    logs.log_reset()  # what a request or a task starts with (an earlier test may have bound ids here)
    with captured_logs() as captured:
        with logs.log_context(request_id="req-12345678", message_id="m-1", bulk_job_id="j-1", contact_id="c-1"):
            logging.getLogger("wecare.test").info("inside")
        logging.getLogger("wecare.test").info("outside")

    inside, outside = captured.records()
    assert (inside["requestId"], inside["messageId"], inside["bulkJobId"], inside["contactId"]) == (
        "req-12345678",
        "m-1",
        "j-1",
        "c-1",
    )
    assert "requestId" not in outside and "messageId" not in outside


def test_phones_emails_bodies_and_tokens_never_reach_a_log_line():
    request = ProviderRequest(
        service="socialmessaging",
        operation="SendWhatsAppMessage",
        params={},
        loggable={"message": {"to": "+919812345678", "type": "text", "text": {"body": "Your OTP is 482913"}}},
    )
    with captured_logs() as captured:
        log = logging.getLogger("wecare.test")
        log.info("DRY_RUN would call %s", request.describe())
        log.info("contact %s <%s> signed in", "+14155550123", "ana.lopez@example.com")
        log.info("calling with Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
        log.info("callback ?access_token=s3cr3tvalue&state=1", extra={"email": "bob@example.org"})

    text = "\n".join(captured.lines())
    for secret in ("919812345678", "482913", "14155550123", "ana.lopez", "eyJhbGci", "s3cr3tvalue", "bob@"):
        assert secret not in text
    records = captured.records()
    assert '"body": "[18 chars]"' in records[0]["message"]
    assert "+***5678" in records[0]["message"]
    assert records[1]["message"] == "contact +***0123 <a***@example.com> signed in"
    assert records[3]["email"] == "b***@example.org"


def test_a_request_gets_an_id_returned_in_the_response_header_and_a_good_one_is_kept(client):
    fresh = client.get("/healthz/live")
    kept = client.get("/healthz/live", HTTP_X_REQUEST_ID="lb-trace-0123456789")
    refused = client.get("/healthz/live", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert len(fresh["X-Request-ID"]) == 32
    assert kept["X-Request-ID"] == "lb-trace-0123456789"
    assert refused["X-Request-ID"] != "bad id\nwith newline" and len(refused["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_every_sign_in_attempt_and_its_result_is_logged_with_the_request_id(client):
    user_create(email="signin-log@example.com", role="Operator", password=PASSWORD)

    with captured_logs() as captured:
        for password, request_id in (("wrong", "req-signin-fail"), (PASSWORD, "req-signin-ok")):
            form = {"username": "signin-log@example.com", "password": password}
            client.post("/accounts/login/", form, HTTP_X_REQUEST_ID=request_id)

    signins = [r for r in captured.records() if r.get("event") == "signin"]
    assert [(r["outcome"], r["level"], r["requestId"]) for r in signins] == [
        ("failure", "WARNING", "req-signin-fail"),
        ("success", "INFO", "req-signin-ok"),
    ]
    assert all("signin-log@" not in r["message"] and "s***@example.com" in r["message"] for r in signins)


@pytest.mark.django_db
def test_a_gate_refusal_is_logged_with_contact_id_channel_and_reason():
    contact = Contact.objects.create(name="No consent", phone="+919800000011", opt_in_whatsapp=False)

    with captured_logs() as captured, pytest.raises(SafetyRefusal):
        safety_check(SendRequest(contact_id=contact.pk, channel="whatsapp", message_type="text", text="hi"))

    (refusal,) = [r for r in captured.records() if r.get("event") == "gate.refusal"]
    assert refusal["contactId"] == str(contact.pk)
    assert refusal["channel"] == "whatsapp"
    assert refusal["code"] == "OPT_IN_REQUIRED" and refusal["reason"]
    assert captured.metric_values("MessagesRefused", Channel="whatsapp", Reason="OPT_IN_REQUIRED") == [1]


def test_a_provider_error_is_logged_with_the_providers_request_id_error_type_and_stack_trace(settings):
    settings.SEND_MODE = "LIVE"  # DRY_RUN never reaches the provider (messaging.channels.base.call)
    client = provider_client("socialmessaging")
    request = ProviderRequest(
        service="socialmessaging",
        operation="SendWhatsAppMessage",
        params={"originationPhoneNumberId": "phone-number-id-x", "message": b"{}", "metaApiVersion": "v20.0"},
    )
    with Stubber(client) as stub, captured_logs() as captured:
        stub.add_client_error(
            "send_whatsapp_message",
            service_error_code="ThrottledRequestException",
            service_message="slow down",
            http_status_code=429,
            response_meta={"RequestId": "aws-req-42"},
        )
        with pytest.raises(ChannelError):
            execute(request)

    (record,) = [r for r in captured.records() if r["message"].startswith("provider error")]
    assert record["providerRequestId"] == "aws-req-42"
    assert record["errorType"] == "ThrottledRequestException"
    assert record["operation"] == "SendWhatsAppMessage" and record["permanent"] is False
    assert record["stackTrace"].startswith("Traceback") and "ThrottledRequestException" in record["stackTrace"]


def _worker_records(worker) -> list[dict]:
    records = []
    for line in worker.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_request_id_follows_the_work_into_a_real_worker_with_task_message_and_contact_ids(
    celery_worker_factory, settings
):
    from messaging.tests.outbound.conftest import drain_queue

    drain_queue(django_settings.QUEUE_OUTBOUND)
    worker = celery_worker_factory(
        queues=[settings.QUEUE_OUTBOUND],
        extra_env={"WHATSAPP_PHONE_NUMBER_IDS": ",".join(settings.WHATSAPP_PHONE_NUMBER_IDS), "SEND_MODE": "DRY_RUN"},
    )
    contact = Contact.objects.create(
        name="Correlated",
        phone=f"+9198{uuid.uuid4().int % 10**8:08d}",
        opt_in_whatsapp=True,
        last_inbound_message_at=django_settings_now(),
    )
    client = APIClient()
    client.force_authenticate(user_create(email="correlate@example.com", role="Operator"))
    request_id = f"trace-{uuid.uuid4().hex}"

    response = client.post(
        "/api/messages/",
        {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hello"},
        format="json",
        HTTP_X_REQUEST_ID=request_id,
    )

    assert response.status_code == 202 and response["X-Request-ID"] == request_id
    message_id = response.json()["messageId"]
    sent = wait_until(
        lambda: [r for r in _worker_records(worker) if r.get("messageId") == message_id and "dry-run" in r["message"]],
        timeout=60,
        message="the worker's log line of the sent message",
    )
    line = sent[0]
    assert line["requestId"] == request_id
    assert line["contactId"] == str(contact.pk)
    assert line["taskId"]
    assert line["logger"] == "messaging.outbound.deliver"
    # Every line the worker wrote is one JSON object (the banner aside), and the metric went out as EMF.
    emf = [r for r in _worker_records(worker) if "_aws" in r and "MessagesSent" in r]
    assert emf and emf[0]["Channel"] == "whatsapp"


def django_settings_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.django_db
def test_a_task_run_in_the_callers_process_keeps_the_request_id_and_restores_the_context_after(settings):
    from celery import shared_task

    @shared_task(name="wecare.tests.logs_something")
    def logs_something(message_id: str) -> None:
        logging.getLogger("wecare.test").info("inside the task")

    with captured_logs() as captured, logs.log_context(request_id="req-eager-0001", user_id=7):
        logs_something.apply(args=["m-42"])
        logging.getLogger("wecare.test").info("after the task")

    inside, after = [r for r in captured.records() if r["logger"] == "wecare.test"]
    assert (inside["requestId"], inside["messageId"]) == ("req-eager-0001", "m-42") and inside["taskId"]
    assert (after["requestId"], after["userId"]) == ("req-eager-0001", "7") and "taskId" not in after
