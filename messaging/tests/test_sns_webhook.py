"""POST /webhooks/sns/: the real-format fixtures through the real endpoint. Genuine messages are
stored once and queued; forged, tampered, wrong-topic, wrong-host and unsigned ones are refused,
logged, and change nothing."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import AuditLog
from contacts.models import Contact
from messaging import sns
from messaging.inbound.outbox import inbound_outbox_relay
from messaging.models import InboundEvent, Message
from messaging.tests import sns_signing
from messaging.tests.inbound_fixtures import drain_queue
from messaging.tests.sns_signing import (
    FIXTURE_TOPIC,
    SigningIdentity,
    eum_envelope,
    fixture_body,
    fixture_headers,
    headers_for,
    inbound_value,
    sns_notification,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "empty_queues")]

NOTIFICATIONS = [
    "sns-notification-inbound-text.json",
    "sns-notification-inbound-image.json",
    "sns-notification-status-delivered.json",
    "sns-notification-status-failed.json",
]


@pytest.fixture
def csrf_client(django_capture_on_commit_callbacks):
    """A client that enforces CSRF (SNS sends no token), and runs on-commit hooks (the enqueue) as a
    committed request would."""

    class CommittingClient(Client):
        def request(self, **request):
            with django_capture_on_commit_callbacks(execute=True):
                return super().request(**request)

    return CommittingClient(enforce_csrf_checks=True)


def _post(client, body, headers):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/webhooks/sns/", data=data, content_type="text/plain; charset=UTF-8", **headers)


def _queued_event_ids() -> list[str]:
    """The webhook queues nothing itself: what the outbox relay puts on the inbound queue."""
    assert drain_queue(settings.QUEUE_INBOUND) == []
    inbound_outbox_relay()
    ids = []
    for message in drain_queue(settings.QUEUE_INBOUND):
        assert message["headers"]["task"] == "messaging.tasks.inbound.inbound_events_process_task"
        ids.extend(json.loads(__import__("base64").b64decode(message["body"]))[0][0])
    return ids


def _nothing_changed():
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()
    assert not Contact.objects.exists()
    assert drain_queue(settings.QUEUE_INBOUND) == []


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_each_notification_fixture_is_stored_raw_once_and_queued(csrf_client, name):
    response = _post(csrf_client, fixture_body(name), fixture_headers(name))

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    body = json.loads(fixture_body(name))
    assert (event.sns_message_id, event.topic_arn, event.body) == (body["MessageId"], FIXTURE_TOPIC, body)
    assert event.status == InboundEvent.Status.PENDING
    assert _queued_event_ids() == [str(event.pk)]


def test_a_redelivered_notification_is_stored_once(csrf_client):
    name = "sns-notification-inbound-text.json"
    for _ in range(3):
        assert _post(csrf_client, fixture_body(name), fixture_headers(name)).status_code == 200

    event = InboundEvent.objects.get()
    # Stored once, relayed once; a redelivery adds nothing to the outbox.
    assert _queued_event_ids() == [str(event.pk)]
    response = _post(csrf_client, fixture_body(name), fixture_headers(name))
    assert (response.status_code, response.content) == (200, b"Already received.")
    assert _queued_event_ids() == []


def test_the_subscription_confirmation_fixture_is_confirmed_by_visiting_its_subscribe_url(csrf_client):
    name = "sns-subscription-confirmation.json"

    response = _post(csrf_client, fixture_body(name), fixture_headers(name))

    assert response.status_code == 200
    assert [json.loads(fixture_body(name))["SubscribeURL"]] == sns_signing.SUBSCRIBE_FETCHES
    _nothing_changed()


def _confirmation(identity: SigningIdentity, message_type: str, subscribe_url: str, topic: str = FIXTURE_TOPIC):
    body = {
        "Type": message_type,
        "MessageId": "47138184-6831-46b8-8f7c-afc488602d7d",
        "Token": "2336412f37fb",
        "TopicArn": topic,
        "Message": "You have chosen to deactivate subscription.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2024-08-12T20:06:41.581Z",
        "SigningCertURL": sns_signing.LOCAL_CERT_URL,
    }
    return identity.sign(body, version="2")


def test_an_unsubscribe_confirmation_is_logged_and_its_url_is_not_visited(csrf_client, sns_setup, caplog):
    url = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={FIXTURE_TOPIC}&Token=1"
    body = _confirmation(sns_setup, "UnsubscribeConfirmation", url)

    with caplog.at_level(logging.WARNING, logger="messaging.webhooks"):
        response = _post(csrf_client, body, headers_for(body))

    assert response.status_code == 200
    assert sns_signing.SUBSCRIBE_FETCHES == []
    assert "UnsubscribeConfirmation" in caplog.text
    _nothing_changed()


def test_a_signed_confirmation_whose_subscribe_url_leaves_sns_is_refused_and_not_visited(csrf_client, sns_setup):
    body = _confirmation(sns_setup, "SubscriptionConfirmation", "https://attacker.example/?Action=ConfirmSubscription")

    response = _post(csrf_client, body, headers_for(body))

    assert response.status_code == 403
    assert sns_signing.SUBSCRIBE_FETCHES == []


def test_a_confirmation_for_another_topic_is_refused_and_not_visited(csrf_client, sns_setup):
    other = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
    body = _confirmation(
        sns_setup, "SubscriptionConfirmation", f"https://sns.us-east-1.amazonaws.com/?TopicArn={other}", other
    )

    response = _post(csrf_client, body, headers_for(body))

    assert response.status_code == 403
    assert sns_signing.SUBSCRIBE_FETCHES == []


def _forged(identity):
    return SigningIdentity.create().sign(
        sns_notification(eum_envelope(inbound_value({"id": "wamid.forged", "type": "text", "text": {"body": "hi"}})))
    )


def _tampered(identity):
    body = json.loads(fixture_body("sns-notification-inbound-text.json"))
    body["Message"] = body["Message"].replace("Hi", "Send me everything")
    return body


def _wrong_topic(identity):
    other = "arn:aws:sns:us-east-1:123456789012:not-our-topic"
    return identity.sign(
        sns_notification(
            eum_envelope(inbound_value({"id": "wamid.x", "type": "text", "text": {"body": "hi"}})), topic=other
        )
    )


def _wrong_certificate_host(identity):
    url = "https://sns.us-east-1.amazonaws.com.attacker.example/SimpleNotificationService-1.pem"
    sns_signing.LOCAL_CERTIFICATES[url] = identity.cert_pem
    return identity.sign(
        sns_notification(
            eum_envelope(inbound_value({"id": "wamid.x", "type": "text", "text": {"body": "hi"}})), cert_url=url
        )
    )


def _http_certificate(identity):
    url = "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem"
    sns_signing.LOCAL_CERTIFICATES[url] = identity.cert_pem
    return identity.sign(
        sns_notification(
            eum_envelope(inbound_value({"id": "wamid.x", "type": "text", "text": {"body": "hi"}})), cert_url=url
        )
    )


def _unsigned(identity):
    body = json.loads(fixture_body("sns-notification-inbound-text.json"))
    del body["Signature"]
    return body


def _unknown_version(identity):
    body = identity.sign(
        sns_notification(eum_envelope(inbound_value({"id": "wamid.x", "type": "text", "text": {"body": "hi"}})))
    )
    body["SignatureVersion"] = "3"
    return body


def _version_swapped(identity):
    body = json.loads(fixture_body("sns-notification-inbound-image.json"))  # signed as version 2
    body["SignatureVersion"] = "1"
    return body


REFUSED = [
    (_forged, 403, "does not verify"),
    (_tampered, 403, "does not verify"),
    (_wrong_topic, 403, "not the configured topic"),
    (_wrong_certificate_host, 403, "not an Amazon SNS host"),
    (_http_certificate, 403, "https"),
    (_unsigned, 403, "not signed"),
    (_unknown_version, 403, "SignatureVersion"),
    (_version_swapped, 403, "does not verify"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "status", "reason"), REFUSED, ids=[r[0].__name__.strip("_") for r in REFUSED])
def test_messages_that_fail_verification_are_refused_logged_audited_and_change_nothing(
    csrf_client, sns_setup, caplog, make, status, reason
):
    body = make(sns_setup)

    with caplog.at_level(logging.WARNING, logger="messaging.webhooks"):
        response = _post(csrf_client, body, headers_for(body))

    assert response.status_code == status
    assert reason in response.content.decode()
    assert "sns webhook refused" in caplog.text
    _nothing_changed()
    audit = AuditLog.objects.get(action="forbidden")
    assert reason in audit.details["reason"]


def test_a_body_that_is_not_json_is_a_bad_request(csrf_client):
    response = csrf_client.post("/webhooks/sns/", data=b"\xff\xfe not json", content_type="text/plain")

    assert response.status_code == 400
    _nothing_changed()


def test_a_type_header_that_contradicts_the_body_is_a_bad_request(csrf_client):
    name = "sns-notification-inbound-text.json"
    headers = {**fixture_headers(name), "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "SubscriptionConfirmation"}

    response = _post(csrf_client, fixture_body(name), headers)

    assert response.status_code == 400
    _nothing_changed()


def test_only_post_is_accepted(csrf_client):
    assert csrf_client.get("/webhooks/sns/").status_code == 405
    assert csrf_client.put("/webhooks/sns/", data=fixture_body("sns-notification-inbound-text.json")).status_code == 405


def test_an_unreachable_certificate_host_answers_503_so_sns_retries(csrf_client, settings):
    settings.SNS_CERT_FETCHER = "messaging.tests.test_sns_webhook.unreachable"
    name = "sns-notification-inbound-text.json"

    response = _post(csrf_client, fixture_body(name), fixture_headers(name))

    assert response.status_code == 503
    _nothing_changed()


def unreachable(url: str) -> bytes:
    raise sns.CertificateUnavailable(f"ConnectTimeout fetching {url}")
