"""Voice calls and RCS messages: the gate, the provider calls checked by botocore's Stubber against the
real pinpoint-sms-voice-v2 model, DRY_RUN, retries, attempts and the VoiceCall record."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings as django_settings
from pynamodb.exceptions import DoesNotExist

from messaging import ratelimit
from messaging.channels import provider_client
from messaging.models import Message, MessageStatus, ProviderAttempt, VoiceCall, VoiceCallStatus
from messaging.safety import SafetyRefusal, safety_evaluate
from messaging.services import (
    DeliveryDeferred,
    handle_outbound_dlq_payload,
    message_deliver,
    message_send,
    send_request_build,
)

pytestmark = pytest.mark.django_db


def _forget(bucket: ratelimit.Bucket) -> None:
    """Start from a full bucket (the channel buckets are shared by every test)."""
    with contextlib.suppress(DoesNotExist):
        ratelimit.RateLimitTracker.get(bucket.key).delete()


def _queued(**kwargs) -> Message:
    return message_send(send_request_build(**kwargs), enqueue=False)


@pytest.fixture
def sent_params():
    """The parameters of every pinpoint-sms-voice-v2 call, as botocore builds them (after validation)."""
    client = provider_client("pinpoint-sms-voice-v2")
    seen: list[tuple[str, dict]] = []

    def record(params, model, **kwargs):
        seen.append((model.name, dict(params)))

    client.meta.events.register("before-parameter-build.pinpoint-sms-voice-v2.*", record, unique_id="voice-rcs-params")
    yield seen
    client.meta.events.unregister("before-parameter-build.pinpoint-sms-voice-v2.*", unique_id="voice-rcs-params")


def test_a_voice_call_goes_out_with_the_voice_the_origination_and_the_configuration_set(
    make_contact, live, sms_stub, settings
):
    settings.VOICE_ORIGINATION_IDENTITY = "+12065550100"
    settings.VOICE_CONFIGURATION_SET = "wecare-voice"
    contact = make_contact(voice=True)
    message = _queued(contact_id=contact.pk, channel="voice", text="Your table is ready.", options={"voiceId": "amy"})
    sms_stub.expect(
        "send_voice_message",
        {"MessageId": "call-1"},
        {
            "DestinationPhoneNumber": contact.phone,
            "OriginationIdentity": "+12065550100",
            "MessageBody": "Your table is ready.",
            "MessageBodyTextType": "TEXT",
            "VoiceId": "AMY",
            "ConfigurationSetName": "wecare-voice",
        },
    )

    result = message_deliver(message.pk)

    sms_stub.done()
    assert (result.status, result.provider_message_id, result.channel) == ("sent", "call-1", "voice")
    call = VoiceCall.objects.get(message=result)
    assert (call.status, call.voice, call.destination, call.provider_message_id) == (
        VoiceCallStatus.INITIATED,
        "AMY",
        contact.phone,
        "call-1",
    )
    assert call.origination == "+12065550100" and call.body == "Your table is ready."
    attempt = ProviderAttempt.objects.get(message=result)
    assert (attempt.operation, attempt.outcome) == ("SendVoiceMessage", "succeeded")


def test_ssml_is_sent_as_ssml_and_broken_or_foreign_ssml_is_refused(make_contact, live, sms_stub):
    contact = make_contact(voice=True)
    ssml = '<speak>Hello <break time="300ms"/><amazon:effect name="whispered">Asha</amazon:effect></speak>'
    message = _queued(contact_id=contact.pk, channel="voice", text=ssml, options={"textType": "SSML"})
    sms_stub.expect("send_voice_message", {"MessageId": "call-2"})

    assert message_deliver(message.pk).status == "sent"
    sms_stub.done()

    namespaced = '<speak xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-IN"><s>Hello</s></speak>'
    _queued(contact_id=contact.pk, channel="voice", text=namespaced, options={"textType": "SSML"})
    for bad, reason in [
        ("<speak>Hello", "not well-formed"),
        ("<p>Hello</p>", "one <speak> element"),
        ("<speak><script>x</script></speak>", "<script> is not one Amazon Polly reads"),
        ('<!DOCTYPE speak [<!ENTITY a "b">]><speak>&a;</speak>', "DOCTYPE or entities"),
    ]:
        with pytest.raises(SafetyRefusal) as refused:
            _queued(contact_id=contact.pk, channel="voice", text=bad, options={"textType": "SSML"})
        assert refused.value.code == "CONTENT_INVALID" and reason in refused.value.reason


def test_the_gate_refuses_a_call_without_voice_consent_a_number_or_within_the_limits(make_contact, settings):
    settings.VOICE_MAX_CHARS = 50
    no_consent = make_contact(sms=True, voice=False)
    no_phone = make_contact(voice=True, phone=None)
    ok = make_contact(voice=True)

    def code(contact, text="Hello", options=None):
        refusal = safety_evaluate(
            send_request_build(contact_id=contact.pk, channel="voice", text=text, options=options)
        )
        return refusal and refusal.code

    assert code(no_consent) == "OPT_IN_REQUIRED"
    assert code(no_phone) == "ADDRESS_MISSING"
    assert code(ok, text="x" * 51) == "CONTENT_INVALID"
    assert code(ok, text="   ") == "CONTENT_INVALID"
    assert code(ok, options={"voiceId": "HAL9000"}) == "CONTENT_INVALID"
    assert code(ok, options={"textType": "MP3"}) == "CONTENT_INVALID"
    assert code(ok, options={"speed": "fast"}) == "CONTENT_INVALID"
    assert code(ok, text="x" * 50) is None


def test_dry_run_records_the_call_without_calling_anyone(make_contact, provider_calls):
    contact = make_contact(voice=True)
    message = _queued(contact_id=contact.pk, channel="voice", text="Hello")

    result = message_deliver(message.pk)

    assert provider_calls == []
    assert (result.status, result.dry_run) == ("sent", True)
    assert VoiceCall.objects.get(message=result).status == VoiceCallStatus.DRY_RUN
    assert ProviderAttempt.objects.get(message=result).outcome == "dry_run"


def test_a_throttled_call_is_retried_and_an_opted_out_number_fails_for_good(make_contact, live, sms_stub):
    contact = make_contact(voice=True)
    message = _queued(contact_id=contact.pk, channel="voice", text="Hello")
    sms_stub.error("send_voice_message", "ThrottlingException", 429)
    sms_stub.expect("send_voice_message", {"MessageId": "call-3"})

    with pytest.raises(DeliveryDeferred):
        message_deliver(message.pk)
    assert message_deliver(message.pk).status == "sent"

    other = _queued(contact_id=contact.pk, channel="voice", text="Hello again")
    sms_stub.stubber.add_client_error(
        "send_voice_message",
        service_error_code="ValidationException",
        http_status_code=400,
        service_message="opted out",
        response_meta={"RequestId": "r"},
    )
    failed = message_deliver(other.pk)
    sms_stub.done()
    assert failed.status == MessageStatus.FAILED and failed.attempts == 1
    assert not VoiceCall.objects.filter(message=failed).exists()


def test_an_rcs_message_goes_from_the_agent_with_suggestions_and_never_a_fallback(
    make_contact, live, sms_stub, sent_params, settings
):
    settings.RCS_CONFIGURATION_SET = "wecare-rcs"
    contact = make_contact(rcs=True)
    suggestions = [
        {"type": "reply", "text": "Yes", "postbackData": "confirm"},
        {"type": "url", "text": "Track", "url": "https://wecare.digital/t/1042"},
        {"type": "dial", "text": "Call us", "phone": "+91 98765 43210"},
    ]
    message = _queued(
        contact_id=contact.pk, channel="rcs", text="Your order shipped.", options={"suggestions": suggestions}
    )
    sms_stub.expect(
        "send_rcs_message",
        {"MessageId": "rcs-1"},
        {
            "DestinationPhoneNumber": contact.phone,
            "OriginationIdentity": django_settings.RCS_AGENT_ID,
            "ConfigurationSetName": "wecare-rcs",
            "RcsMessageContent": {
                "Content": {"TextMessage": {"Body": "Your order shipped."}},
                "Suggestions": [
                    {"Reply": {"Text": "Yes", "PostbackData": "confirm"}},
                    {"OpenUrl": {"Text": "Track", "PostbackData": "Track", "Url": "https://wecare.digital/t/1042"}},
                    {"DialPhone": {"Text": "Call us", "PostbackData": "Call us", "PhoneNumber": "+919876543210"}},
                ],
            },
        },
    )

    result = message_deliver(message.pk)

    sms_stub.done()
    assert (result.status, result.provider_message_id) == ("sent", "rcs-1")
    assert [name for name, _ in sent_params] == ["SendRcsMessage"]
    assert all("FallbackConfiguration" not in params for _, params in sent_params)
    assert not VoiceCall.objects.exists()


def test_no_rcs_call_ever_carries_a_fallback_whatever_the_message(make_contact, live, sms_stub, sent_params):
    contact = make_contact(rcs=True)
    for n, options in enumerate([None, {"suggestions": []}, {"suggestions": [{"type": "reply", "text": "OK"}]}]):
        message = _queued(contact_id=contact.pk, channel="rcs", text=f"Hello {n}", options=options)
        sms_stub.expect("send_rcs_message", {"MessageId": f"rcs-{n}"})
        assert message_deliver(message.pk).status == "sent"
    sms_stub.done()
    assert len(sent_params) == 3
    assert all(name == "SendRcsMessage" and "FallbackConfiguration" not in params for name, params in sent_params)


def test_the_gate_refuses_rcs_without_consent_bad_suggestions_or_an_agent(make_contact, settings):
    sms_only = make_contact(sms=True)
    contact = make_contact(rcs=True)

    def code(who, options=None, text="Hi"):
        refusal = safety_evaluate(send_request_build(contact_id=who.pk, channel="rcs", text=text, options=options))
        return refusal and (refusal.code, refusal.reason)

    assert code(sms_only)[0] == "OPT_IN_REQUIRED"
    assert code(contact, {"suggestions": [{"type": "reply", "text": "x" * 26}]})[0] == "CONTENT_INVALID"
    assert (
        code(contact, {"suggestions": [{"type": "url", "text": "Go", "url": "http://x.org"}]})[0] == "CONTENT_INVALID"
    )
    assert code(contact, {"suggestions": [{"type": "dial", "text": "Call", "phone": "abc"}]})[0] == "CONTENT_INVALID"
    assert code(contact, {"suggestions": [{"type": "reply", "text": "a"}] * 12})[0] == "CONTENT_INVALID"
    assert code(contact, {"fallback": "SMS"})[0] == "CONTENT_INVALID"
    assert code(contact, text="x" * 3073)[0] == "CONTENT_INVALID"
    assert code(contact) is None
    settings.RCS_AGENT_ID = ""
    assert code(contact) == ("CONTENT_INVALID", "RCS is not set up here (RCS_AGENT_ID is empty)")


def test_a_failed_ssml_call_replayed_from_the_dlq_keeps_its_voice_and_text_type(make_contact, live, sms_stub):
    contact = make_contact(voice=True)
    ssml = "<speak>Hello</speak>"
    message = _queued(contact_id=contact.pk, channel="voice", text=ssml, options={"textType": "SSML", "voiceId": "AMY"})
    sms_stub.stubber.add_client_error(
        "send_voice_message", service_error_code="ValidationException", http_status_code=400, service_message="no"
    )
    assert message_deliver(message.pk).status == MessageStatus.FAILED

    replay = handle_outbound_dlq_payload({"messageId": str(message.pk)})
    sms_stub.expect(
        "send_voice_message",
        {"MessageId": "call-replayed"},
        {
            "DestinationPhoneNumber": contact.phone,
            "OriginationIdentity": django_settings.VOICE_ORIGINATION_IDENTITY,
            "MessageBody": ssml,
            "MessageBodyTextType": "SSML",
            "VoiceId": "AMY",
            "ConfigurationSetName": django_settings.VOICE_CONFIGURATION_SET,
        },
    )

    assert (replay.replay_of_id, replay.options) == (message.pk, {"voiceId": "AMY", "textType": "SSML"})
    assert message_deliver(replay.pk).status == "sent"
    sms_stub.done()


def test_calls_keep_to_their_own_rate_limit_of_one_per_second_by_default(make_contact, settings, provider_calls):
    settings.RATE_LIMIT_VOICE = 1.0  # the default: one call per second, a burst of one
    settings.RATE_LIMIT_MAX_WAIT_SECONDS = 0.1
    settings.RATE_LIMIT_SMS = 1.0
    contact = make_contact(voice=True, sms=True)
    first, second = (_queued(contact_id=contact.pk, channel="voice", text=text) for text in ("one", "two"))
    sms = _queued(contact_id=contact.pk, channel="sms", text="not a call")
    bucket = ratelimit.voice_buckets()[0]
    assert (bucket.key, bucket.rate) == ("voice", 1.0)
    _forget(bucket)
    _forget(ratelimit.sms_buckets()[0])

    try:
        assert message_deliver(first.pk).status == "sent"
        with pytest.raises(DeliveryDeferred) as deferred:
            message_deliver(second.pk)
        assert message_deliver(sms.pk).status == "sent"  # another channel's bucket
    finally:
        _forget(bucket)
        _forget(ratelimit.sms_buckets()[0])

    assert 0.5 < deferred.value.countdown <= 1.2
    second.refresh_from_db()
    assert (second.status, second.attempts) == ("queued", 0)
