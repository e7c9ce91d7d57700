"""The provider contract: one registered provider per channel, each classifying its own errors, and
one boundary (messaging.channels.base.call) that decides DRY_RUN for every provider call."""

from __future__ import annotations

import inspect

import pytest
from botocore.stub import Stubber

from contacts.models import Channel
from messaging.channels import (
    ChannelError,
    Provider,
    ProviderRequest,
    call,
    provider_client,
    provider_for,
    register,
    registered_channels,
)
from messaging.channels import email as email_channel
from messaging.channels import sms as sms_channel
from messaging.channels import whatsapp as whatsapp_channel

SENDS = [
    whatsapp_channel.send_request(phone_number_id="phone-number-id-1", payload={"to": "+15550100"}),
    whatsapp_channel.media_upload_request(phone_number_id="phone-number-id-1", bucket="media", key="a.jpg"),
    sms_channel.send_request(to="+15550100", body="Hi"),
    email_channel.send_request(to="asha@example.org", subject="Hi", text="Hello"),
]


def test_every_channel_has_exactly_one_registered_provider():
    assert set(registered_channels()) == set(Channel.values)
    for channel in Channel.values:
        provider = provider_for(channel)
        assert isinstance(provider, Provider) and provider.channel == channel


def test_a_new_channel_plugs_in_by_registering_a_provider():
    @register
    class VoiceProvider(Provider):
        channel = "voice-test"
        service = "pinpoint-sms-voice-v2"
        send_operation = "SendVoiceMessage"

    try:
        assert isinstance(provider_for("voice-test"), VoiceProvider)
    finally:
        from messaging.channels import _REGISTRY

        del _REGISTRY["voice-test"]
    with pytest.raises(KeyError):
        provider_for("voice-test")


@pytest.mark.parametrize("request_", SENDS, ids=lambda r: r.operation)
def test_in_dry_run_no_send_reaches_a_provider_even_through_the_provider_layer_itself(request_, provider_calls):
    # given: DRY_RUN (the outbound tests' default)
    # when: the boundary and every provider's own call are asked to send directly
    results = [call(request_)] + [provider_for(channel).call(request_) for channel in Channel.values]

    # then: nothing was called, and every answer says so
    assert provider_calls == []
    assert all(result.dry_run and result.response == {} for result in results)


def test_the_boundary_has_no_flag_that_could_force_a_call_in_dry_run(provider_calls):
    assert list(inspect.signature(call).parameters) == ["request", "classify"]
    with pytest.raises(TypeError):
        call(SENDS[2], dry_run=False)  # type: ignore[call-arg]
    assert provider_calls == []


def test_in_dry_run_reads_still_reach_the_provider(whatsapp_stub, provider_calls):
    whatsapp_stub.expect("list_linked_whatsapp_business_accounts", {"linkedAccounts": []})

    assert whatsapp_channel.list_linked_accounts() == []
    assert provider_calls == [("socialmessaging", "ListLinkedWhatsAppBusinessAccounts")]


def _error(stub, operation: str, code: str, status: int, message: str, **modeled) -> None:
    stub.stubber.add_client_error(
        operation,
        service_error_code=code,
        service_message=message,
        http_status_code=status,
        response_meta={"RequestId": "req-42"},
        modeled_fields=modeled or None,
    )


@pytest.mark.parametrize(
    ("code", "status", "message", "permanent", "provider_code"),
    [
        ("ValidationException", 400, "(#131026) Message undeliverable", True, "131026"),
        ("ValidationException", 400, "(#131047) Re-engagement message", True, "131047"),
        ("ValidationException", 400, "(#131056) Pair rate limit hit", False, "131056"),
        ("ValidationException", 400, "(#130429) Rate limit hit", False, "130429"),
        ("ThrottledRequestException", 429, "Slow down", False, ""),
        ("DependencyException", 502, "Meta is unavailable", False, ""),
        ("AccessDeniedException", 403, "No", True, ""),
    ],
)
def test_whatsapp_errors_are_classified_by_metas_code_where_it_gives_one(
    live, whatsapp_stub, code, status, message, permanent, provider_code
):
    _error(whatsapp_stub, "send_whatsapp_message", code, status, message)

    with pytest.raises(ChannelError) as caught:
        provider_for("whatsapp").call(SENDS[0])

    error = caught.value
    assert (error.code, error.permanent, error.provider_code, error.request_id) == (
        code,
        permanent,
        provider_code,
        "req-42",
    )
    assert error.http_status == 502 and error.service == "socialmessaging"


@pytest.mark.parametrize(
    ("code", "status", "reason", "permanent"),
    [
        ("ConflictException", 409, "DESTINATION_PHONE_NUMBER_OPTED_OUT", True),
        ("ThrottlingException", 400, "", False),
        ("InternalServerException", 500, "", False),
    ],
)
def test_sms_errors_are_classified_by_the_reason_the_service_gives(live, sms_stub, code, status, reason, permanent):
    modeled = {"Reason": reason, "ResourceType": "phone-number", "ResourceId": "+15550100"} if reason else {}
    _error(sms_stub, "send_text_message", code, status, "refused", **modeled)

    with pytest.raises(ChannelError) as caught:
        provider_for("sms").call(SENDS[2])

    assert caught.value.permanent is permanent
    assert caught.value.provider_code == reason


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        ("MessageRejected", 400, True),
        ("SendingPausedException", 400, True),
        ("TooManyRequestsException", 429, False),
        ("LimitExceededException", 400, False),
    ],
)
def test_email_errors_are_classified_permanent_or_transient(live, code, status, permanent):
    stubber = Stubber(provider_client("sesv2"))
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=status)
    stubber.activate()
    try:
        with pytest.raises(ChannelError) as caught:
            provider_for("email").call(SENDS[3])
    finally:
        stubber.deactivate()

    assert caught.value.permanent is permanent and caught.value.code == code


def test_a_live_send_returns_the_providers_message_and_request_ids(live, sms_stub):
    sms_stub.stubber.add_response(
        "send_text_message", {"MessageId": "sms-1", "ResponseMetadata": {"RequestId": "req-7", "HTTPStatusCode": 200}}
    )
    provider = provider_for("sms")

    result = provider.call(SENDS[2])

    assert not result.dry_run and provider.sent(result) == "sms-1" and result.request_id == "req-7"


def test_a_send_answered_without_a_message_id_is_a_transient_error():
    from messaging.channels import ProviderResult

    with pytest.raises(ChannelError) as caught:
        provider_for("whatsapp").sent(ProviderResult(dry_run=False, response={"ResponseMetadata": {}}))
    assert caught.value.permanent is False


def test_requests_not_on_the_read_list_count_as_sends():
    assert not ProviderRequest("socialmessaging", "DeleteWhatsAppMessageMedia", {}).read_only
    assert ProviderRequest("socialmessaging", "ListWhatsAppMessageTemplates", {}).read_only
