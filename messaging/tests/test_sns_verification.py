"""messaging.sns: signatures v1/v2, the exact string to sign, certificate URL rules, topic, cache."""

from __future__ import annotations

import json

import pytest

from messaging import sns
from messaging.tests import sns_signing
from messaging.tests.sns_signing import (
    FIXTURE_CERT_URL,
    FIXTURE_TOPIC,
    LOCAL_CERT_URL,
    SigningIdentity,
    fixture_body,
    sns_notification,
)

FIXTURE_FILES = [
    ("sns-notification-inbound-text.json", "1"),
    ("sns-notification-inbound-image.json", "2"),
    ("sns-notification-status-delivered.json", "1"),
    ("sns-notification-status-failed.json", "2"),
    ("sns-subscription-confirmation.json", "1"),
]


def _fixture(name: str) -> dict:
    return json.loads(fixture_body(name))


def _headers(message: dict) -> dict[str, str]:
    return {"x-amz-sns-message-type": message["Type"]}


@pytest.mark.parametrize(("name", "version"), FIXTURE_FILES)
def test_every_fixture_verifies_with_the_test_certificate(sns_setup, name, version):
    message = _fixture(name)
    assert message["SignatureVersion"] == version

    verified = sns.verify_message(message, headers=_headers(message))

    assert verified.type == message["Type"]
    assert verified.message_id == message["MessageId"]
    assert verified.topic_arn == FIXTURE_TOPIC


def test_the_string_to_sign_of_a_notification_has_the_documented_keys_in_order():
    message = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:t",
        "Subject": "S",
        "Message": "line1\nline2",
        "Timestamp": "2024-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "UnsubscribeURL": "https://x",
    }

    assert sns.string_to_sign(message) == (
        b"Message\nline1\nline2\nMessageId\nm-1\nSubject\nS\nTimestamp\n2024-01-01T00:00:00.000Z\n"
        b"TopicArn\narn:t\nType\nNotification\n"
    )
    del message["Subject"]
    assert b"Subject" not in sns.string_to_sign(message)


def test_the_string_to_sign_of_a_confirmation_includes_subscribe_url_and_token():
    message = _fixture("sns-subscription-confirmation.json")

    expected = "".join(
        f"{key}\n{message[key]}\n"
        for key in ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    )

    assert sns.string_to_sign(message) == expected.encode()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_message_signed_here_like_sns_verifies_with_both_versions(sns_setup, version):
    message = sns_setup.sign(sns_notification('{"hello": "world"}'), version=version)

    assert sns.verify_message(message, headers=_headers(message)).body["Message"] == '{"hello": "world"}'


def test_a_signature_made_with_sha1_does_not_pass_as_version_2(sns_setup):
    message = sns_setup.sign(sns_notification("x"), version="1")
    message["SignatureVersion"] = "2"

    with pytest.raises(sns.SNSVerificationError, match="does not verify"):
        sns.verify_message(message, headers=_headers(message))


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp"])
def test_changing_any_signed_field_breaks_the_signature(sns_setup, field):
    message = json.loads(fixture_body("sns-notification-inbound-text.json"))
    message[field] = message[field] + " "

    with pytest.raises(sns.SNSVerificationError, match="does not verify"):
        sns.verify_message(message, headers=_headers(message))


def test_a_changed_sender_inside_the_message_breaks_the_signature(sns_setup):
    message = _fixture("sns-notification-inbound-text.json")
    assert "Diego" in message["Message"]
    message["Message"] = message["Message"].replace("Diego", "Mallory")

    with pytest.raises(sns.SNSVerificationError, match="does not verify"):
        sns.verify_message(message, headers=_headers(message))


def test_a_subject_added_to_a_signed_notification_breaks_the_signature(sns_setup):
    message = _fixture("sns-notification-inbound-text.json")
    message["Subject"] = "injected"

    with pytest.raises(sns.SNSVerificationError, match="does not verify"):
        sns.verify_message(message, headers=_headers(message))


def test_a_message_signed_by_another_key_is_refused(sns_setup):
    forger = SigningIdentity.create()
    message = forger.sign(sns_notification("forged"), version="2")  # names our certificate URL

    with pytest.raises(sns.SNSVerificationError, match="does not verify"):
        sns.verify_message(message, headers=_headers(message))


@pytest.mark.parametrize("version", [None, "", "3", "0", 1, "1.0", "v2"])
def test_unknown_signature_versions_are_refused(sns_setup, version):
    message = sns_setup.sign(sns_notification("x"))
    if version is None:
        del message["SignatureVersion"]
    else:
        message["SignatureVersion"] = version

    with pytest.raises(sns.SNSVerificationError, match="SignatureVersion"):
        sns.verify_message(message, headers=_headers(message))


@pytest.mark.parametrize("signature", [None, "", "not base64!!", "QUJD"])
def test_missing_or_garbage_signatures_are_refused(sns_setup, signature):
    message = sns_setup.sign(sns_notification("x"))
    if signature is None:
        del message["Signature"]
    else:
        message["Signature"] = signature

    with pytest.raises(sns.SNSVerificationError):
        sns.verify_message(message, headers=_headers(message))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-1.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://s3.amazonaws.com/bucket/SimpleNotificationService-1.pem",
        "https://sns.us.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://attacker@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-1.pem",
        "https://xsns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.cn.evil/SimpleNotificationService-1.pem",
        "https://sns.us_east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:notaport/x.pem",
        "",
        None,
    ],
)
def test_certificate_urls_off_the_sns_hosts_are_refused_before_any_fetch(sns_setup, url):
    message = sns_setup.sign(sns_notification("x", cert_url=url or ""), version="2")
    if url is None:
        del message["SigningCertURL"]
    sns_signing.LOCAL_CERTIFICATES[url or ""] = sns_setup.cert_pem  # would verify, if it were fetched

    with pytest.raises(sns.SNSVerificationError, match="SigningCertURL"):
        sns.verify_message(message, headers=_headers(message))
    assert sns_signing.FETCHED == []


@pytest.mark.parametrize(
    ("topic", "url"),
    [
        ("arn:aws:sns:us-east-1:1:t", "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"),
        ("arn:aws:sns:eu-west-1:1:t", "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"),
        ("arn:aws-cn:sns:cn-north-1:1:t", "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"),
        ("arn:aws:sns:us-east-1:1:t", "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem"),
    ],
)
def test_genuine_sns_certificate_urls_of_the_topics_region_pass_the_url_check(settings, topic, url):
    settings.SNS_TOPIC_ARN = topic
    assert sns.validate_sns_url(url) == url


def test_a_message_for_another_topic_is_refused_before_its_certificate_is_fetched(sns_setup, settings):
    settings.SNS_TOPIC_ARN = "arn:aws:sns:us-east-1:809904170947:base-wecare-digital"
    message = _fixture("sns-notification-inbound-text.json")

    with pytest.raises(sns.SNSVerificationError, match="not the configured topic") as refused:
        sns.verify_message(message, headers=_headers(message))
    assert refused.value.status == 403
    assert sns_signing.FETCHED == []


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({}, "x-amz-sns-message-type"),
        ({"x-amz-sns-message-type": "SubscriptionConfirmation"}, "does not match"),
        ({"x-amz-sns-message-type": "Notification", "x-amz-sns-topic-arn": "arn:other"}, "topic-arn"),
        ({"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": "other"}, "message-id"),
        ({"x-amz-sns-message-type": "Notification", "x-amz-sns-rawdelivery": "true"}, "Raw message delivery"),
    ],
)
def test_headers_that_contradict_the_body_are_refused(sns_setup, headers, match):
    message = _fixture("sns-notification-inbound-text.json")

    with pytest.raises(sns.SNSVerificationError, match=match) as refused:
        sns.verify_message(message, headers=headers)
    assert refused.value.status == 400


@pytest.mark.parametrize("body", [[], "text", 1, None, {"Type": "Other"}, {"Type": "Notification"}])
def test_bodies_that_are_not_sns_messages_are_refused_as_bad_requests(sns_setup, body):
    with pytest.raises(sns.SNSVerificationError) as refused:
        sns.verify_message(body, headers={"x-amz-sns-message-type": "Notification"})
    assert refused.value.status == 400


def test_a_signed_field_that_is_not_a_string_is_refused(sns_setup):
    message = sns_setup.sign(sns_notification("x"))
    message["Message"] = {"x": 1}

    with pytest.raises(sns.SNSVerificationError, match="must be a string"):
        sns.verify_message(message, headers=_headers(message))


def test_the_certificate_is_fetched_once_per_url_and_cached(sns_setup):
    for _ in range(3):
        message = sns_setup.sign(sns_notification("x"))
        sns.verify_message(message, headers=_headers(message))
    fixture = _fixture("sns-notification-status-failed.json")
    sns.verify_message(fixture, headers=_headers(fixture))
    sns.verify_message(fixture, headers=_headers(fixture))

    assert sorted(sns_signing.FETCHED) == sorted([LOCAL_CERT_URL, FIXTURE_CERT_URL])


def test_an_unknown_certificate_url_is_not_fetched_again_for_a_while(sns_setup):
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-does-not-exist.pem"
    for _ in range(3):
        message = sns_setup.sign(sns_notification("x", cert_url=url))
        with pytest.raises(sns.SNSVerificationError, match="404"):
            sns.verify_message(message, headers=_headers(message))

    assert [url] == sns_signing.FETCHED


def test_a_certificate_that_is_not_pem_is_refused(sns_setup):
    sns_signing.LOCAL_CERTIFICATES[LOCAL_CERT_URL] = b"<html>not a certificate</html>"
    message = sns_setup.sign(sns_notification("x"))

    with pytest.raises(sns.SNSVerificationError, match="not a PEM"):
        sns.verify_message(message, headers=_headers(message))


def test_old_messages_are_refused_as_replays_when_an_age_limit_is_set(sns_setup, settings):
    settings.SNS_MAX_MESSAGE_AGE_SECONDS = 3600
    fixture = _fixture("sns-notification-inbound-text.json")  # signed in 2024
    fresh = sns_setup.sign(sns_notification("x"))

    with pytest.raises(sns.SNSVerificationError, match="replay"):
        sns.verify_message(fixture, headers=_headers(fixture))
    assert sns.verify_message(fresh, headers=_headers(fresh))


def test_the_default_fetcher_refuses_plain_http_and_foreign_hosts_without_connecting():
    with pytest.raises(sns.SNSVerificationError, match="https"):
        sns.fetch_certificate("http://sns.us-east-1.amazonaws.com/x.pem")
    with pytest.raises(sns.SNSVerificationError, match="not an Amazon SNS host"):
        sns.fetch_certificate("https://127.0.0.1/x.pem")
    with pytest.raises(sns.SNSVerificationError, match="not an Amazon SNS host"):
        sns.fetch_subscribe_url("https://example.com/?Action=ConfirmSubscription")


SLOW_FETCHES: list[str] = []


def slow_fetch(url: str) -> bytes:
    import time

    SLOW_FETCHES.append(url)
    time.sleep(0.3)
    return sns_signing.LOCAL_CERTIFICATES[url]


def test_many_threads_verifying_at_once_fetch_the_certificate_once(sns_setup, settings):
    import threading

    settings.SNS_CERT_FETCHER = "messaging.tests.test_sns_verification.slow_fetch"
    SLOW_FETCHES.clear()
    messages = [sns_setup.sign(sns_notification(f"m{i}")) for i in range(8)]
    barrier = threading.Barrier(len(messages))
    verified = []

    def verify(message):
        barrier.wait(timeout=10)
        verified.append(sns.verify_message(message, headers=_headers(message)).message_id)

    threads = [threading.Thread(target=verify, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(verified) == 8
    assert SLOW_FETCHES == [LOCAL_CERT_URL]
    assert sns.certificate_cache._url_locks == {}
