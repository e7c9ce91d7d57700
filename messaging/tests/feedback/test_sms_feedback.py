"""EUM SMS delivery receipts and two-way SMS in their real formats, through the SNS endpoint: delivered,
failed with the carrier's reason, invalid or blocked numbers suppressed for SMS, and STOP withdrawing
SMS consent."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditLog
from contacts.models import ConsentEvent
from messaging.models import Message, MessageStatus, Suppression
from messaging.outbound.request import send_request_build
from messaging.safety import safety_evaluate
from messaging.tests.feedback.samples import SMS_EVENT, SMS_INBOUND, sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms_sent(make_contact, sent_message):
    contact = make_contact(opt_ins={"sms": True, "whatsapp": True})
    return contact, sent_message(contact, "sms", provider_message_id="862a8790-60c0-4430-9b2b-658bdexample")


def _receipt(contact, event_type: str, status: str, description: str, **changes) -> str:
    return json.dumps(
        sample(
            SMS_EVENT,
            eventType=event_type,
            messageStatus=status,
            messageStatusDescription=description,
            destinationPhoneNumber=contact.phone,
            **changes,
        )
    )


def _sms_request(contact):
    return send_request_build(contact_id=contact.pk, channel="sms", text="Clinic closed on Friday", contact=contact)


def test_a_delivered_receipt_marks_the_sms_delivered(sms_sent, deliver_sns):
    contact, message = sms_sent

    _, summary = deliver_sns(_receipt(contact, "TEXT_DELIVERED", "DELIVERED", "Message has been accepted by phone"))

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert int(message.delivered_at.timestamp() * 1000) == SMS_EVENT["eventTimestamp"]
    assert summary.feedback == "sms delivered"


def test_a_final_successful_receipt_counts_as_delivered_and_an_interim_one_does_not(sms_sent, deliver_sns):
    contact, message = sms_sent

    deliver_sns(_receipt(contact, "TEXT_SUCCESSFUL", "SUCCESSFUL", "accepted by carrier", isFinal=False))
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT

    deliver_sns(_receipt(contact, "TEXT_SUCCESSFUL", "SUCCESSFUL", "Message has been accepted by phone carrier"))
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_an_invalid_number_fails_the_sms_with_the_carrier_reason_and_suppresses_the_number(sms_sent, deliver_sns):
    contact, message = sms_sent
    assert safety_evaluate(_sms_request(contact)) is None

    deliver_sns(
        _receipt(contact, "TEXT_INVALID", "INVALID", "Destination phone number is invalid", carrierName="Movistar")
    )

    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "TEXT_INVALID")
    assert message.error_details["message"] == "Destination phone number is invalid"
    assert message.error_details["carrierName"] == "Movistar"
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason) == ("sms", contact.phone, "sms_invalid")
    refusal = safety_evaluate(_sms_request(contact))
    assert refusal.code == "SMS_SUPPRESSED" and "(Invalid phone number)" in refusal.reason
    # The number is suppressed for SMS only: WhatsApp to it is another matter.
    whatsapp = send_request_build(contact_id=contact.pk, channel="whatsapp", text="hi", contact=contact)
    assert safety_evaluate(whatsapp) is None or safety_evaluate(whatsapp).code != "WHATSAPP_SUPPRESSED"


def test_a_blocked_number_is_suppressed_for_sms(sms_sent, deliver_sns):
    contact, message = sms_sent

    deliver_sns(_receipt(contact, "TEXT_BLOCKED", "BLOCKED", "Blocked as spam by phone carrier"))

    assert Suppression.objects.get().reason == "sms_blocked"
    assert safety_evaluate(_sms_request(contact)).code == "SMS_SUPPRESSED"


@pytest.mark.parametrize("event_type", ["TEXT_CARRIER_UNREACHABLE", "TEXT_TTL_EXPIRED", "TEXT_SPAM", "TEXT_UNKNOWN"])
def test_other_failures_fail_the_sms_but_leave_the_number_sendable(sms_sent, deliver_sns, event_type):
    contact, message = sms_sent

    deliver_sns(_receipt(contact, event_type, event_type.removeprefix("TEXT_"), "carrier said no"))

    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, event_type)
    assert not Suppression.objects.exists()
    assert safety_evaluate(_sms_request(contact)) is None


def test_a_late_delivered_receipt_never_undoes_a_failure(sms_sent, deliver_sns):
    contact, message = sms_sent
    deliver_sns(_receipt(contact, "TEXT_TTL_EXPIRED", "TTL_EXPIRED", "expired"))

    deliver_sns(_receipt(contact, "TEXT_DELIVERED", "DELIVERED", "delivered"))

    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "TEXT_TTL_EXPIRED")


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop\n", "UNSUBSCRIBE"])
def test_an_inbound_sms_stop_withdraws_sms_consent_like_whatsapps_stop(make_contact, deliver_sns, body):
    contact = make_contact(opt_ins={"sms": True, "whatsapp": True})

    deliver_sns(
        json.dumps(sample(SMS_INBOUND, originationNumber=contact.phone, messageKeyword="STOP", messageBody=body))
    )

    contact.refresh_from_db()
    assert contact.opt_in_sms is False
    assert contact.opt_in_whatsapp is True  # only the channel it came on
    event = ConsentEvent.objects.filter(contact=contact, channel="sms").latest("changed_at")
    assert (event.old_value, event.new_value, event.source) == (True, False, "inbound_keyword")
    stored = Message.objects.get(contact=contact, direction="inbound", channel="sms")
    assert stored.keyword_action == "opt_out" and stored.provider_message_id == SMS_INBOUND["inboundMessageId"]
    assert AuditLog.objects.get(action="inbound.keyword", resource_id=str(stored.pk)).details["channel"] == "sms"
    assert safety_evaluate(_sms_request(contact)).code == "OPT_IN_REQUIRED"


def test_other_inbound_sms_is_stored_and_changes_no_consent(make_contact, deliver_sns):
    contact = make_contact(opt_ins={"sms": True})

    deliver_sns(json.dumps(sample(SMS_INBOUND, originationNumber=contact.phone)))  # "EXAMPLE", keyword JOIN

    contact.refresh_from_db()
    assert contact.opt_in_sms is True
    stored = Message.objects.get(contact=contact, direction="inbound", channel="sms")
    assert (stored.content, stored.keyword_action, stored.status) == ("EXAMPLE", "", "received")


def test_the_same_inbound_sms_delivered_twice_is_stored_once(make_contact, deliver_sns):
    contact = make_contact(opt_ins={"sms": True})
    payload = json.dumps(sample(SMS_INBOUND, originationNumber=contact.phone, messageBody="STOP"))

    deliver_sns(payload)
    _, summary = deliver_sns(payload)  # another SNS message id, same inboundMessageId

    assert summary.feedback == "sms inbound already received"
    assert Message.objects.filter(direction="inbound", channel="sms").count() == 1


def test_an_inbound_sms_from_an_unknown_number_creates_no_contact(make_contact, deliver_sns):
    from contacts.models import Contact

    before = Contact.objects.count()

    _, summary = deliver_sns(json.dumps(sample(SMS_INBOUND, messageBody="STOP")))

    assert summary.feedback == "sms inbound unknown sender"
    assert Contact.objects.count() == before
