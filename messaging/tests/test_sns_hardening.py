"""The SNS endpoint as an attacker sees it: look-alike certificate hosts, certificates issued to
someone else, forged messages that would make us fetch at will, SHA1 signatures, oversized and
deeply nested bodies, and refusals crafted to bloat (or break) the audit trail."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
from django.db import DatabaseError
from django.test import Client

from accounts.models import AuditLog
from messaging import sns
from messaging.models import InboundEvent
from messaging.tests import sns_signing
from messaging.tests.sns_signing import LOCAL_CERT_URL, SigningIdentity, headers_for, sns_notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_queues")]

HOST = "https://sns.us-east-1.amazonaws.com"


def _headers(message: dict) -> dict[str, str]:
    return {"x-amz-sns-message-type": message["Type"]}


def post(body, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client().post("/webhooks/sns/", data=data, content_type="text/plain; charset=UTF-8", **headers)


# --- The certificate host is exactly the topic region's SNS host ---------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        # S3 website endpoints of anyone's bucket match a loose sns.<anything>.amazonaws.com pattern.
        "https://sns.s3-us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.s3-website-us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        # A real SNS host, but not the region of our topic.
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
)
def test_a_certificate_host_other_than_the_topic_regions_sns_host_is_refused_before_any_fetch(sns_setup, url):
    sns_signing.LOCAL_CERTIFICATES[url] = sns_setup.cert_pem  # it would verify, if it were fetched
    message = sns_setup.sign(sns_notification("x", cert_url=url), version="2")

    with pytest.raises(sns.SNSVerificationError, match="is not 'sns.us-east-1.amazonaws.com'"):
        sns.verify_message(message, headers=_headers(message))
    assert sns_signing.FETCHED == []


def test_a_certificate_not_issued_to_amazon_sns_is_refused(sns_setup):
    impostor = SigningIdentity.create(common_name="attacker.example")
    url = f"{HOST}/SimpleNotificationService-impostor.pem"
    sns_signing.LOCAL_CERTIFICATES[url] = impostor.cert_pem
    message = impostor.sign(sns_notification("x", cert_url=url), version="2")

    with pytest.raises(sns.SNSVerificationError, match="not issued to Amazon SNS"):
        sns.verify_message(message, headers=_headers(message))


# --- Forged messages cannot make the server fetch at will ------------------------------------------------
def test_forged_messages_naming_made_up_certificates_get_a_handful_of_fetches_then_503s(sns_setup):
    statuses = []
    for n in range(20):
        url = f"{HOST}/SimpleNotificationService-forged{n:02d}.pem"
        message = sns_setup.sign(sns_notification("x", cert_url=url), version="2")
        statuses.append(post(message, **headers_for(message)).status_code)

    assert len(sns_signing.FETCHED) == sns.fetch_limiter.burst
    assert statuses[: sns.fetch_limiter.burst] == [403] * sns.fetch_limiter.burst
    assert set(statuses[sns.fetch_limiter.burst :]) == {503}  # SNS would retry a genuine one
    assert not InboundEvent.objects.exists()


def test_no_more_than_the_allowed_fetches_run_at_once():
    limiter = sns.FetchLimiter(rate=100, burst=100, concurrency=2)
    with ExitStack() as running:
        running.enter_context(limiter.slot())
        running.enter_context(limiter.slot())

        with pytest.raises(sns.CertificateUnavailable, match="too many"), limiter.slot():
            pass
    with limiter.slot():  # a slot is free again once a fetch is over
        pass


UNAVAILABLE_FETCHES: list[str] = []


def unavailable_fetcher(url: str) -> bytes:
    UNAVAILABLE_FETCHES.append(url)
    raise sns.CertificateUnavailable(f"{url} answered HTTP 503.")


def test_a_failed_fetch_is_remembered_briefly_and_not_repeated_for_every_message(sns_setup, settings):
    settings.SNS_CERT_FETCHER = "messaging.tests.test_sns_hardening.unavailable_fetcher"
    UNAVAILABLE_FETCHES.clear()
    for _ in range(5):
        message = sns_setup.sign(sns_notification("x"), version="2")
        with pytest.raises(sns.CertificateUnavailable):
            sns.verify_message(message, headers=_headers(message))

    assert UNAVAILABLE_FETCHES == [LOCAL_CERT_URL]


# --- SignatureVersion 1 --------------------------------------------------------------------------------
def test_signature_version_1_is_refused_where_it_is_not_allowed(sns_setup, settings):
    settings.SNS_ALLOW_SIGNATURE_V1 = False
    sha1 = sns_setup.sign(sns_notification("x"), version="1")
    sha256 = sns_setup.sign(sns_notification("x"), version="2")

    with pytest.raises(sns.SNSVerificationError, match="SignatureVersion 1"):
        sns.verify_message(sha1, headers=_headers(sha1))
    assert sns.verify_message(sha256, headers=_headers(sha256)).type == "Notification"


def test_production_does_not_allow_signature_version_1_by_default():
    import subprocess
    import sys

    code = "from wecare import settings as s; print(s.SNS_ALLOW_SIGNATURE_V1)"
    test_env = subprocess.run(
        [sys.executable, "-c", code], env={**__import__("os").environ, "ENVIRONMENT": "test"}, capture_output=True
    )
    assert test_env.stdout.strip() == b"True"


# --- Bodies: size before parsing, nesting as a 400 ----------------------------------------------------------
def test_a_body_over_256_kb_is_refused_before_it_is_read(sns_setup):
    message = sns_setup.sign(sns_notification("x" * (256 * 1024)), version="2")

    response = post(message, **headers_for(message))

    assert response.status_code == 413
    assert "the limit here is 256 KB" in response.content.decode()
    assert sns_signing.FETCHED == [] and not InboundEvent.objects.exists()


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_at_the_webhook_is_a_400(sns_setup, depth):
    response = post("[" * depth + "]" * depth, HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification")

    assert response.status_code == 400
    assert "nested too deeply" in response.content.decode()


@pytest.mark.parametrize("depth", [33, 200_000])
def test_deeply_nested_json_at_an_api_endpoint_is_a_400(depth):
    from accounts.services import user_create

    client = Client()
    client.force_login(user_create(email="ops@example.com", role="Operator"))
    body = '{"name": ' + "[" * depth + "]" * depth + "}"

    response = client.post("/api/contacts/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.content.decode()


# --- Refusals and the audit trail ---------------------------------------------------------------------------
def test_an_anonymous_refusal_writes_a_bounded_audit_entry(sns_setup):
    message = sns_setup.sign(sns_notification("x", topic="arn:aws:sns:us-east-1:1:" + "t" * 20_000), version="2")

    response = post(message, **{**headers_for(message), "HTTP_USER_AGENT": "A" * 5000})

    assert response.status_code == 403
    entry = AuditLog.objects.get(action="forbidden")
    assert entry.actor == "anonymous"
    assert len(json.dumps(entry.details)) < 2000
    assert entry.details["reason"].endswith("…")


def test_an_audit_that_cannot_be_written_does_not_turn_a_403_into_a_500(sns_setup, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("the audit table is unavailable")

    monkeypatch.setattr(AuditLog.objects, "create", broken)
    message = sns_setup.sign(sns_notification("x", topic="arn:aws:sns:us-east-1:1:other"), version="2")

    response = post(message, **headers_for(message))

    assert response.status_code == 403
