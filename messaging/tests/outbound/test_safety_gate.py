"""The safety gate: each rule refuses with its code and reason, logs, counts; evaluation has no side effects."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import SafetyRefusalCount, TemplateStatus
from messaging.safety import (
    RefusalCode,
    SafetyRefusal,
    SendRequest,
    safety_check,
    safety_evaluate,
    safety_refusal_counts,
)
from messaging.services import OutgoingMedia, send_request_build
from messaging.tier import tier_reserve

pytestmark = pytest.mark.django_db


def whatsapp_text(contact, text="Hello", **kwargs) -> SendRequest:
    return send_request_build(contact_id=contact.pk, channel="whatsapp", text=text, **kwargs)


def code_of(request: SendRequest) -> str | None:
    refusal = safety_evaluate(request)
    return refusal.code if refusal else None


def test_a_missing_contact_is_refused_with_contact_not_found():
    request = SendRequest(contact_id=uuid.uuid4(), channel="sms", message_type="text", text="Hi")

    assert code_of(request) == RefusalCode.CONTACT_NOT_FOUND


def test_a_malformed_contact_id_is_refused_not_crashed():
    request = SendRequest(contact_id="not-a-uuid", channel="sms", message_type="text", text="Hi")

    assert code_of(request) == RefusalCode.CONTACT_NOT_FOUND


def test_a_deleted_contact_is_refused_with_contact_not_found(make_contact):
    contact = make_contact(sms=True)
    contact.deleted_at = timezone.now()
    contact.save()

    assert code_of(send_request_build(contact_id=contact.pk, channel="sms", text="Hi")) == "CONTACT_NOT_FOUND"


@pytest.mark.parametrize("channel", ["whatsapp", "sms", "email"])
def test_a_contact_without_opt_in_for_the_channel_is_refused(make_contact, channel):
    contact = make_contact(whatsapp=channel != "whatsapp", sms=channel != "sms", email_opt_in=channel != "email")
    request = send_request_build(
        contact_id=contact.pk, channel=channel, text="Hi", subject="S" if channel == "email" else ""
    )

    assert code_of(request) == RefusalCode.OPT_IN_REQUIRED


def test_there_is_no_fallback_to_another_channel(make_contact):
    # given: opted in to SMS and email, not WhatsApp
    contact = make_contact(sms=True, email_opt_in=True, window=True)

    refusal = safety_evaluate(whatsapp_text(contact))

    assert refusal.code == "OPT_IN_REQUIRED"
    assert "WhatsApp" in refusal.reason


def test_sms_to_a_contact_without_a_phone_is_refused_with_address_missing(make_contact):
    contact = make_contact(sms=True, phone=None)

    assert code_of(send_request_build(contact_id=contact.pk, channel="sms", text="Hi")) == "ADDRESS_MISSING"


def test_email_to_a_contact_without_an_email_is_refused_with_address_missing(make_contact):
    contact = make_contact(email_opt_in=True, email=None)
    request = send_request_build(contact_id=contact.pk, channel="email", subject="S", text="Body")

    assert code_of(request) == "ADDRESS_MISSING"


def test_a_phone_number_outside_the_allowlist_is_refused(make_contact):
    contact = make_contact(whatsapp=True, window=True)
    request = whatsapp_text(contact, origination_phone_number_id="phone-number-id-" + "0" * 32)

    assert code_of(request) == RefusalCode.PHONE_NOT_ALLOWED


def test_an_empty_allowlist_refuses_every_whatsapp_send(make_contact, settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = []
    contact = make_contact(whatsapp=True, window=True)

    assert code_of(whatsapp_text(contact)) == RefusalCode.PHONE_NOT_ALLOWED


def test_the_number_the_contact_last_wrote_to_is_chosen(make_contact, settings):
    from messaging.models import Message

    contact = make_contact(whatsapp=True, window=True)
    second = settings.WHATSAPP_PHONE_NUMBER_IDS[1]
    Message.objects.create(
        contact=contact, channel="whatsapp", direction="inbound", status="received", origination_phone_number_id=second
    )

    assert whatsapp_text(contact).origination_phone_number_id == second


def test_without_inbound_history_the_first_allowlisted_number_is_chosen(make_contact, settings):
    contact = make_contact(whatsapp=True, window=True)

    assert whatsapp_text(contact).origination_phone_number_id == settings.WHATSAPP_PHONE_NUMBER_IDS[0]


def test_free_form_whatsapp_outside_the_window_needs_a_template_and_is_logged_as_a_warning(make_contact, caplog):
    contact = make_contact(whatsapp=True, window=False)

    with caplog.at_level(logging.INFO, logger="messaging.safety"), pytest.raises(SafetyRefusal) as refused:
        safety_check(whatsapp_text(contact))

    assert refused.value.code == "TEMPLATE_REQUIRED"
    record = next(r for r in caplog.records if "TEMPLATE_REQUIRED" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert str(contact.pk) in record.getMessage() and "channel=whatsapp" in record.getMessage()


def test_a_contact_who_never_wrote_is_outside_the_window(make_contact):
    contact = make_contact(whatsapp=True, window=None)

    assert code_of(whatsapp_text(contact)) == "TEMPLATE_REQUIRED"


def test_the_window_closes_exactly_24_hours_after_the_last_inbound_message(make_contact):
    contact = make_contact(whatsapp=True)
    contact.last_inbound_message_at = timezone.now() - timedelta(hours=24)
    contact.save()
    now = contact.last_inbound_message_at + timedelta(hours=24)

    assert safety_evaluate(whatsapp_text(contact), now=now - timedelta(seconds=1)) is None
    assert safety_evaluate(whatsapp_text(contact), now=now).code == "TEMPLATE_REQUIRED"


def test_media_outside_the_window_needs_a_template_too(make_contact):
    contact = make_contact(whatsapp=True, window=False)
    media = OutgoingMedia(content_type="image/jpeg", size=1000, s3_key="k")

    assert code_of(send_request_build(contact_id=contact.pk, channel="whatsapp", media=media)) == "TEMPLATE_REQUIRED"


def test_an_approved_template_passes_outside_the_window(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template()
    request = send_request_build(
        contact_id=contact.pk,
        channel="whatsapp",
        template_name="order_update",
        template_language="en_US",
        template_parameters=["Asha", "1042"],
    )

    assert safety_evaluate(request) is None


@pytest.mark.parametrize(
    ("length", "allowed"),
    [(4096, True), (4097, False)],
)
def test_whatsapp_text_is_limited_to_4096_characters(make_contact, length, allowed):
    contact = make_contact(whatsapp=True, window=True)

    refusal = safety_evaluate(whatsapp_text(contact, text="x" * length))

    assert (refusal is None) is allowed
    if not allowed:
        assert refusal.code == "CONTENT_INVALID" and "4096" in refusal.reason


@pytest.mark.parametrize(("length", "allowed"), [(1600, True), (1601, False)])
def test_sms_is_limited_to_1600_characters(make_contact, length, allowed):
    contact = make_contact(sms=True)

    refusal = safety_evaluate(send_request_build(contact_id=contact.pk, channel="sms", text="x" * length))

    assert (refusal is None) is allowed


@pytest.mark.parametrize(
    ("subject", "text", "html", "reason"),
    [
        ("", "Body", "", "no subject"),
        ("   ", "Body", "", "no subject"),
        ("Hello", "", "", "no body"),
        ("Hello", "  ", "<p> </p>", "no body"),
        ("Hello", "", "<script>alert(1)</script>", "no body"),
        ("Hello\r\nBcc: x@example.org", "Body", "", "line break"),
    ],
)
def test_email_without_subject_or_body_is_refused(make_contact, subject, text, html, reason):
    contact = make_contact(email_opt_in=True)
    request = send_request_build(contact_id=contact.pk, channel="email", subject=subject, text=text, html=html)

    refusal = safety_evaluate(request)

    assert refusal.code == "CONTENT_INVALID"
    assert reason in refusal.reason


def test_email_html_is_sanitised(make_contact):
    contact = make_contact(email_opt_in=True)
    request = send_request_build(
        contact_id=contact.pk,
        channel="email",
        subject="Hi",
        html='<p onclick="steal()">Hello <script>x()</script><a href="javascript:y()">a</a></p>',
    )

    clearance = safety_check(request)

    assert clearance.html == '<p>Hello <a rel="noopener noreferrer">a</a></p>'


@pytest.mark.parametrize(
    ("content_type", "size", "media_type", "text", "fragment"),
    [
        ("image/gif", 1000, "", "", "does not take image/gif"),
        ("image/jpeg", 6 * 1024 * 1024, "", "", "at most"),
        ("image/jpeg", 0, "", "", "empty"),
        ("audio/ogg", 1000, "", "a caption", "cannot carry a caption"),
        ("image/jpeg", 1000, "", "c" * 1025, "1024"),
        ("application/pdf", 1000, "image", "", "does not take application/pdf"),
    ],
)
def test_media_whatsapp_refuses_is_refused_here(make_contact, content_type, size, media_type, text, fragment):
    contact = make_contact(whatsapp=True, window=True)
    media = OutgoingMedia(content_type=content_type, size=size, s3_key="k")
    request = send_request_build(
        contact_id=contact.pk, channel="whatsapp", media=media, media_type=media_type, text=text
    )

    refusal = safety_evaluate(request)

    assert refusal.code == "CONTENT_INVALID"
    assert fragment in refusal.reason


def test_sms_cannot_carry_a_template_or_media(make_contact, make_template):
    contact = make_contact(sms=True)
    make_template()
    request = send_request_build(
        contact_id=contact.pk, channel="sms", template_name="order_update", template_language="en_US"
    )

    assert code_of(request) == "CONTENT_INVALID"


def template_request(contact, parameters, name="order_update", language="en_US"):
    return send_request_build(
        contact_id=contact.pk,
        channel="whatsapp",
        template_name=name,
        template_language=language,
        template_parameters=parameters,
    )


def test_an_unknown_template_is_refused(make_contact):
    contact = make_contact(whatsapp=True, window=False)

    assert code_of(template_request(contact, [])) == "TEMPLATE_INVALID"


def test_a_template_in_another_language_is_unknown(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template()

    assert code_of(template_request(contact, ["a", "b"], language="hi")) == "TEMPLATE_INVALID"


@pytest.mark.parametrize("status", [TemplateStatus.PENDING, TemplateStatus.REJECTED, TemplateStatus.PAUSED])
def test_a_template_that_is_not_approved_is_refused(make_contact, make_template, status):
    contact = make_contact(whatsapp=True, window=False)
    make_template(status=status)

    refusal = safety_evaluate(template_request(contact, ["Asha", "1042"]))

    assert refusal.code == "TEMPLATE_INVALID" and "not APPROVED" in refusal.reason


@pytest.mark.parametrize(
    "parameters",
    [
        [],
        ["Asha"],
        ["Asha", "1042", "extra"],
        {"1": "Asha", "2": "1042"},
        ["Asha", ""],
        ["Asha", 1042],
        ["Asha\nBcc", "1042"],
        ["Asha", "10     42"],
        "Asha,1042",
    ],
)
def test_positional_template_parameters_must_match_in_number_and_format(make_contact, make_template, parameters):
    contact = make_contact(whatsapp=True, window=False)
    make_template()

    assert code_of(template_request(contact, parameters)) == "TEMPLATE_INVALID"


@pytest.mark.parametrize(
    "parameters",
    [
        ["Asha", "1042"],
        {"first_name": "Asha"},
        {"first_name": "Asha", "order_id": "1042", "extra": "x"},
        {"firstname": "Asha", "order_id": "1042"},
    ],
)
def test_named_template_parameters_must_match_by_name(make_contact, make_template, parameters):
    contact = make_contact(whatsapp=True, window=False)
    make_template("named_update", "Hi {{first_name}}, order {{order_id}} shipped.", parameter_format="named")

    assert code_of(template_request(contact, parameters, name="named_update")) == "TEMPLATE_INVALID"


def test_matching_named_parameters_pass_and_the_body_is_rendered(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template("named_update", "Hi {{first_name}}, order {{order_id}} shipped.", parameter_format="named")

    clearance = safety_check(template_request(contact, {"order_id": "1042", "first_name": "Asha"}, name="named_update"))

    assert clearance.content == "Hi Asha, order 1042 shipped."
    assert clearance.business_initiated is True


def test_a_template_without_placeholders_takes_no_parameters(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template("hello", "Hello from WECARE.DIGITAL")

    assert safety_evaluate(template_request(contact, None, name="hello")) is None
    assert code_of(template_request(contact, ["x"], name="hello")) == "TEMPLATE_INVALID"


def test_a_template_with_an_image_header_is_refused_before_any_provider_error(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=False)
    make_template(
        "promo",
        "Hi {{1}}",
        components=[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi {{1}}"}],
    )

    refusal = safety_evaluate(template_request(contact, ["Asha"], name="promo"))

    assert refusal.code == "TEMPLATE_INVALID" and "header" in refusal.reason


def test_a_template_inside_the_window_is_not_business_initiated(make_contact, make_template):
    contact = make_contact(whatsapp=True, window=True)
    make_template()

    assert safety_check(template_request(contact, ["Asha", "1042"])).business_initiated is False


def test_a_used_up_tier_refuses_business_initiated_templates_with_tier_limit(make_contact, make_template, settings):
    settings.WHATSAPP_TIER_LIMIT = 1
    make_template()
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    first, second = make_contact(whatsapp=True, window=False), make_contact(whatsapp=True, window=False)
    assert tier_reserve(phone, first.pk)

    assert code_of(template_request(second, ["Asha", "1042"])) == "TIER_LIMIT"
    # the contact whose conversation is open costs nothing more
    assert safety_evaluate(template_request(first, ["Asha", "1042"])) is None
    # and inside the window a template is not business-initiated at all
    in_window = make_contact(whatsapp=True, window=True)
    assert safety_evaluate(template_request(in_window, ["Asha", "1042"])) is None


def test_evaluation_neither_logs_nor_counts(make_contact, caplog):
    contact = make_contact(whatsapp=False)

    with caplog.at_level(logging.DEBUG, logger="messaging.safety"):
        refusal = safety_evaluate(whatsapp_text(contact))

    assert refusal.code == "OPT_IN_REQUIRED"
    assert caplog.records == []
    assert SafetyRefusalCount.objects.count() == 0


def test_every_refusal_is_logged_with_contact_channel_and_reason_and_counted_per_code(make_contact, caplog):
    contact = make_contact(sms=False)
    request = send_request_build(contact_id=contact.pk, channel="sms", text="Hi")

    with caplog.at_level(logging.INFO, logger="messaging.safety"):
        for _ in range(3):
            with pytest.raises(SafetyRefusal):
                safety_check(request)
    with pytest.raises(SafetyRefusal):
        safety_check(SendRequest(contact_id=uuid.uuid4(), channel="sms", message_type="text", text="x"))

    line = caplog.records[0].getMessage()
    assert f"contactId={contact.pk}" in line and "channel=sms" in line and "code=OPT_IN_REQUIRED" in line
    assert "opted in" in line
    assert safety_refusal_counts() == {"CONTACT_NOT_FOUND": 1, "OPT_IN_REQUIRED": 3}
    assert safety_refusal_counts(channel="whatsapp") == {}
