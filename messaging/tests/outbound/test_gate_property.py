"""Property: over contact state × channel × message kind × window × allowlist × tier, a provider call
happens exactly when the rules allow it, and a refusal carries the code of the first rule broken.

The oracle below restates the rules of the issue independently of messaging.safety; every example
goes the whole way (message_send, then message_deliver in LIVE mode against botocore Stubbers and
moto's SES), and the provider calls are counted on the clients themselves.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from messaging.channels import provider_client
from messaging.models import TemplateStatus, WhatsAppTemplate
from messaging.safety import (
    GateLookups,
    Refusal,
    SafetyRefusal,
    _evaluate,
    safety_evaluate,
    safety_evaluate_many,
)
from messaging.services import OutgoingMedia, SendRequest, message_deliver, message_send, send_request_build
from messaging.tests.outbound.conftest import ProviderStub, new_phone_number_id
from messaging.tier import tier_reserve

CONTACT_STATES = ("active", "deleted", "missing")
CHANNELS = ("whatsapp", "sms", "email")
KINDS = (
    "text",
    "long_text",
    "image",
    "template_ok",
    "template_bad_params",
    "template_pending",
    "email_ok",
    "email_no_subject",
)
WINDOWS = ("inside", "outside", "never")


def expected_refusal(*, state, opt_in, has_address, channel, kind, window, allowlisted, tier_full) -> str | None:
    """The rules, in the order the issue lists them."""
    if state != "active":
        return "CONTACT_NOT_FOUND"
    if not opt_in:
        return "OPT_IN_REQUIRED"
    if not has_address:
        return "ADDRESS_MISSING"
    template = kind.startswith("template")
    if channel == "whatsapp":
        if not allowlisted:
            return "PHONE_NOT_ALLOWED"
        if not template and window != "inside":
            return "TEMPLATE_REQUIRED"
        if kind in ("long_text", "email_ok"):  # 5000 characters; a subject
            return "CONTENT_INVALID"
        if kind in ("template_bad_params", "template_pending"):
            return "TEMPLATE_INVALID"
        if template and window != "inside" and tier_full:
            return "TIER_LIMIT"
        return None
    if channel == "sms":
        return None if kind in ("text", "email_no_subject") else "CONTENT_INVALID"
    return None if kind == "email_ok" else "CONTENT_INVALID"


def send_arguments(kind: str) -> dict:
    return {
        "text": {"text": "Hello"},
        "long_text": {"text": "x" * 5000},
        "image": {"media": OutgoingMedia(content_type="image/jpeg", size=1000, s3_key="outgoing/test/photo.jpg")},
        "template_ok": {"template_name": "prop_ok", "template_language": "en_US", "template_parameters": ["Asha"]},
        "template_bad_params": {"template_name": "prop_ok", "template_language": "en_US", "template_parameters": []},
        "template_pending": {
            "template_name": "prop_pending",
            "template_language": "en_US",
            "template_parameters": ["Asha"],
        },
        "email_ok": {"subject": "Hello", "text": "Body"},
        "email_no_subject": {"subject": "", "text": "Body"},
    }[kind]


@pytest.fixture
def property_templates(db):
    WhatsAppTemplate.objects.create(name="prop_ok", language="en_US", body="Hi {{1}}", status=TemplateStatus.APPROVED)
    WhatsAppTemplate.objects.create(
        name="prop_pending", language="en_US", body="Hi {{1}}", status=TemplateStatus.PENDING
    )


def _contact(state, channel, opt_in, has_address, window) -> uuid.UUID:
    if state == "missing":
        return uuid.uuid4()
    tag = uuid.uuid4().hex
    phone = f"+4477{int(tag[:12], 16) % 10**8:08d}"
    email = f"p-{tag[:12]}@example.org"
    if not has_address:
        if channel == "email":
            email = None
        else:
            phone = None
    last_inbound = {
        "inside": timezone.now() - timedelta(hours=2),
        "outside": timezone.now() - timedelta(hours=25),
        "never": None,
    }[window]
    contact = Contact.objects.create(
        phone=phone,
        email=email,
        opt_in_whatsapp=opt_in and channel == "whatsapp",
        opt_in_sms=opt_in and channel == "sms",
        opt_in_email=opt_in and channel == "email",
        last_inbound_message_at=last_inbound,
        deleted_at=timezone.now() if state == "deleted" else None,
    )
    return contact.pk


@pytest.mark.django_db
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    state=st.sampled_from(CONTACT_STATES),
    opt_in=st.booleans(),
    has_address=st.booleans(),
    channel=st.sampled_from(CHANNELS),
    kind=st.sampled_from(KINDS),
    window=st.sampled_from(WINDOWS),
    allowlisted=st.booleans(),
    tier_full=st.booleans(),
)
def test_a_provider_call_happens_exactly_when_the_rules_allow_it(
    property_templates, state, opt_in, has_address, channel, kind, window, allowlisted, tier_full
):
    phone_id = new_phone_number_id()
    with override_settings(
        WHATSAPP_PHONE_NUMBER_IDS=[phone_id],
        WHATSAPP_TIER_LIMIT=1,
        SEND_MODE="LIVE",
        RATE_LIMIT_WHATSAPP_PER_PHONE=1000.0,
        RATE_LIMIT_SMS=1000.0,
        RATE_LIMIT_EMAIL=1000.0,
        RATE_LIMIT_WHATSAPP_MEDIA=1000.0,
    ):
        if tier_full:
            assert tier_reserve(phone_id, uuid.uuid4())  # someone else used the only place
        contact_id = _contact(state, channel, opt_in, has_address, window)
        origination = "" if allowlisted else new_phone_number_id()
        expected = expected_refusal(
            state=state,
            opt_in=opt_in,
            has_address=has_address,
            channel=channel,
            kind=kind,
            window=window,
            allowlisted=allowlisted,
            tier_full=tier_full,
        )

        calls: list[str] = []
        stubs = [ProviderStub("socialmessaging"), ProviderStub("pinpoint-sms-voice-v2")]
        clients = [stubs[0].client, stubs[1].client, provider_client("sesv2")]
        for client in clients:
            client.meta.events.register(
                "before-parameter-build.*.*", lambda model, **kw: calls.append(model.name), unique_id="prop"
            )
        if expected is None:  # answers for exactly the calls the rules allow
            if channel == "whatsapp" and kind == "image":
                stubs[0].expect("post_whatsapp_message_media", {"mediaId": "123"})
            if channel == "whatsapp":
                stubs[0].expect("send_whatsapp_message", {"messageId": "wa-1"})
            if channel == "sms":
                stubs[1].expect("send_text_message", {"MessageId": "sms-1"})
        try:
            try:
                message = message_send(
                    send_request_build(
                        contact_id=contact_id,
                        channel=channel,
                        origination_phone_number_id=origination,
                        **send_arguments(kind),
                    ),
                    enqueue=False,
                )
            except SafetyRefusal as refusal:
                outcome = refusal.code
            else:
                delivered = message_deliver(message.pk)
                outcome = None if delivered.status == "sent" else delivered.error_code
        finally:
            for client in clients:
                client.meta.events.unregister("before-parameter-build.*.*", unique_id="prop")
            for stub in stubs:
                stub.close()

    assert outcome == expected
    assert bool(calls) == (expected is None), calls


# --- the batched entry point decides exactly as one by one ---------------------------------------

CASE = st.fixed_dictionaries(
    {
        "state": st.sampled_from(CONTACT_STATES),
        "opt_in": st.booleans(),
        "has_address": st.booleans(),
        "channel": st.sampled_from(CHANNELS),
        "kind": st.sampled_from(KINDS),
        "window": st.sampled_from(WINDOWS),
        "allowlisted": st.booleans(),
        "tier_full": st.booleans(),
    }
)


def gate_request(case: dict, contact_id, phone_id: str) -> SendRequest:
    """The request message_send would judge for this case (built by the one builder)."""
    return send_request_build(
        contact_id=contact_id,
        channel=case["channel"],
        origination_phone_number_id=phone_id if case["allowlisted"] else new_phone_number_id(),
        **send_arguments(case["kind"]),
    )


def _decision(result) -> tuple:
    if isinstance(result, Refusal):
        return ("refused", str(result.code), result.reason)
    return (
        "allowed",
        str(result.contact.pk),
        result.phone_number_id,
        result.business_initiated,
        result.template.pk if result.template else None,
        result.content,
        result.html,
        result.segments,
    )


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=st.lists(CASE, min_size=1, max_size=8))
def test_the_batched_gate_decides_every_case_exactly_as_one_by_one(property_templates, cases):
    # given: a batch of generated cases, each on a number of its own (its tier full or not)
    phones = [new_phone_number_id() for _ in cases]
    with override_settings(WHATSAPP_PHONE_NUMBER_IDS=phones, WHATSAPP_TIER_LIMIT=1):
        requests = []
        for case, phone in zip(cases, phones, strict=True):
            if case["tier_full"]:
                assert tier_reserve(phone, uuid.uuid4())
            contact_id = _contact(case["state"], case["channel"], case["opt_in"], case["has_address"], case["window"])
            requests.append(gate_request(case, contact_id, phone))
        now = timezone.now()

        # when
        batched = safety_evaluate_many(requests, now=now)
        one_by_one = [safety_evaluate(request, now=now) for request in requests]
        clearances = [
            _evaluate(request, lookups=GateLookups(now=now)) for request in requests
        ]  # the one-by-one path's clearance, as safety_check returns it

    # then: the same decision, reason and clearance for every case, and the rules' expected code
    for case, batch_result, single, clearance in zip(cases, batched, one_by_one, clearances, strict=True):
        assert _decision(batch_result) == _decision(clearance)
        assert (single.code if single else None) == (batch_result.code if isinstance(batch_result, Refusal) else None)
        assert (str(single.code) if single else None) == expected_refusal(**case)
