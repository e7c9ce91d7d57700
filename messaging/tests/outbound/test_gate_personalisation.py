"""The gate renders a personalised request for its contact and refuses a required placeholder with no
value (PLACEHOLDER_MISSING); what it clears and message_send stores is the rendered message."""

from __future__ import annotations

import pytest

from contacts.models import AttributeDefinition, Contact
from messaging.models import SafetyRefusalCount
from messaging.safety import Clearance, RefusalCode, SafetyRefusal, safety_evaluate, safety_evaluate_many
from messaging.services import message_send, send_request_build

pytestmark = pytest.mark.django_db


def _with(contact: Contact, **attributes) -> Contact:
    AttributeDefinition.objects.get_or_create(name="city")
    Contact.objects.filter(pk=contact.pk).update(attributes=attributes)
    contact.refresh_from_db()
    return contact


def test_a_required_placeholder_without_a_value_is_refused_placeholder_missing(make_contact):
    contact = make_contact(sms=True)
    request = send_request_build(contact_id=contact.pk, channel="sms", text="Hi from {{attr.city}}", personalise=True)

    refusal = safety_evaluate(request)

    assert refusal.code == RefusalCode.PLACEHOLDER_MISSING
    assert refusal.reason == "the contact has no value for {{attr.city}} and the message gives no fallback"


def test_consent_is_judged_before_placeholders(make_contact):
    contact = make_contact(sms=False)
    request = send_request_build(contact_id=contact.pk, channel="sms", text="Hi {{attr.city}}", personalise=True)

    assert safety_evaluate(request).code == RefusalCode.OPT_IN_REQUIRED


def test_a_refusal_for_a_missing_placeholder_is_counted_like_every_refusal(make_contact):
    contact = make_contact(sms=True)

    with pytest.raises(SafetyRefusal) as refused:
        message_send(
            send_request_build(contact_id=contact.pk, channel="sms", text="{{attr.plan}}", personalise=True),
            enqueue=False,
        )

    assert refused.value.code == "PLACEHOLDER_MISSING"
    assert SafetyRefusalCount.objects.get(code="PLACEHOLDER_MISSING", channel="sms").count == 1


def test_the_stored_message_is_the_rendered_one(make_contact):
    contact = _with(make_contact(email_opt_in=True, name="Asha Rao"), city="Pune")

    message = message_send(
        send_request_build(
            contact_id=contact.pk,
            channel="email",
            subject="{{first_name}}, Pune news",
            text="Hello {{name}} in {{attr.city}}",
            html="<p>{{attr.city|your town}}</p>",
            personalise=True,
        ),
        enqueue=False,
    )

    assert message.subject == "Asha, Pune news"
    assert message.content == "Hello Asha Rao in Pune"
    assert message.html == "<p>Pune</p>"


def test_a_rendered_value_is_still_judged_by_the_content_rules(make_contact):
    contact = _with(make_contact(whatsapp=True, window=True), city="P" * 200)
    request = send_request_build(
        contact_id=contact.pk, channel="whatsapp", text="{{attr.city}}" * 25, personalise=True, contact=contact
    )

    refusal = safety_evaluate(request)

    assert refusal.code == RefusalCode.PLACEHOLDER_INVALID and "5000 characters" in refusal.reason


def test_a_message_wrong_as_written_is_still_the_messages_fault(make_contact):
    contact = _with(make_contact(whatsapp=True, window=True), city="Pune")
    request = send_request_build(
        contact_id=contact.pk, channel="whatsapp", text="x" * 4097 + "{{attr.city}}", personalise=True
    )

    assert safety_evaluate(request).code == RefusalCode.CONTENT_INVALID


def test_a_template_parameter_this_contact_makes_too_long_refuses_only_this_contact(make_contact, make_template):
    make_template("hello", "Hi {{1}}, welcome to {{2}}.")
    contact = _with(make_contact(whatsapp=True, name="Asha"), city="P" * 1100)
    request = send_request_build(
        contact_id=contact.pk,
        channel="whatsapp",
        template_name="hello",
        template_language="en_US",
        template_parameters=["{{first_name}}", "{{attr.city}}"],
        personalise=True,
    )

    refusal = safety_evaluate(request)

    assert refusal.code == RefusalCode.PLACEHOLDER_INVALID and "longer than 1024" in refusal.reason


def test_a_request_not_asking_for_personalisation_is_left_as_written(make_contact):
    contact = make_contact(sms=True)
    message = message_send(
        send_request_build(contact_id=contact.pk, channel="sms", text="Code {{1}} stays {{attr.x}}"), enqueue=False
    )

    assert message.content == "Code {{1}} stays {{attr.x}}"


def test_the_batched_gate_renders_each_request_for_its_own_contact(make_contact, make_template):
    make_template("hello", "Hi {{1}}, welcome to {{2}}.")
    pune = _with(make_contact(whatsapp=True, name="Asha"), city="Pune")
    goa = _with(make_contact(whatsapp=True, name="Ravi"), city="Goa")
    nowhere = make_contact(whatsapp=True, name="Meera")
    requests = [
        send_request_build(
            contact_id=c.pk,
            channel="whatsapp",
            template_name="hello",
            template_language="en_US",
            template_parameters=["{{first_name}}", "{{attr.city}}"],
            personalise=True,
        )
        for c in (pune, goa, nowhere)
    ]

    results = safety_evaluate_many(requests, tier_allows=lambda *_: True)

    assert isinstance(results[0], Clearance) and results[0].content == "Hi Asha, welcome to Pune."
    assert results[0].request.template_parameters == ["Asha", "Pune"]
    assert results[1].content == "Hi Ravi, welcome to Goa."
    assert results[2].code == RefusalCode.PLACEHOLDER_MISSING
