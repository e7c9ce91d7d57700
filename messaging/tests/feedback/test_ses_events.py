"""SES events (configuration set → SNS → /webhooks/sns/) in their real format: message status, and the
suppression of hard-bounced, complaining, soft-bouncing and account-suppressed addresses."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from accounts.models import AuditLog
from accounts.services import user_create
from messaging import inbound
from messaging.feedback.suppressions import suppression_lift
from messaging.models import EmailSoftBounce, InboundEvent, MessageStatus, Suppression
from messaging.outbound.request import send_request_build
from messaging.safety import safety_evaluate
from messaging.tests.feedback.samples import (
    SES_BOUNCE,
    SES_COMPLAINT,
    SES_DELIVERY,
    SES_DELIVERY_DELAY,
    SES_REJECT,
    ses_event,
)
from messaging.tests.sns_signing import sns_notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def email_sent(make_contact, sent_message):
    contact = make_contact(opt_ins={"email": True})
    message = sent_message(contact, "email", provider_message_id="0100018f-ses-1")
    return contact, message


def _event(template, message, contact, **changes) -> str:
    return ses_event(
        template,
        message_id=str(message.pk),
        ses_message_id=message.provider_message_id,
        address=contact.email,
        **changes,
    )


def _email_request(contact):
    return send_request_build(contact_id=contact.pk, channel="email", subject="News", text="Hello", contact=contact)


def test_a_delivery_event_marks_the_email_delivered_at_the_time_ses_gives(email_sent, deliver_sns):
    contact, message = email_sent

    _, summary = deliver_sns(_event(SES_DELIVERY, message, contact))

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at.isoformat().startswith("2016-10-19T23:21:04.133")
    assert summary.feedback == "ses delivery"
    assert not Suppression.objects.exists()


def test_a_hard_bounce_fails_the_email_suppresses_the_address_and_the_gate_refuses_it(email_sent, deliver_sns):
    contact, message = email_sent
    assert safety_evaluate(_email_request(contact)) is None

    deliver_sns(_event(SES_BOUNCE, message, contact))

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "Bounce.Permanent.General"
    assert message.error_details["diagnosticCode"] == ["smtp; 550 5.1.1 user unknown"]
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", contact.email, "hard_bounce")
    assert suppression.contact == contact
    assert suppression.created_at.isoformat().startswith("2017-08-05T00:41:02.669")
    refusal = safety_evaluate(_email_request(contact))
    assert refusal.code == "EMAIL_SUPPRESSED"
    assert "since 2017-08-05 00:41 UTC (Hard bounce)" in refusal.reason
    assert contact.email not in refusal.reason  # refusals are logged: no address in them


def test_the_address_is_suppressed_whatever_its_case(make_contact, sent_message, deliver_sns):
    contact = make_contact(email="Mixed.Case@Example.org", opt_ins={"email": True})
    message = sent_message(contact, "email")

    deliver_sns(ses_event(SES_BOUNCE, message_id=str(message.pk), ses_message_id="x", address="MIXED.case@example.ORG"))

    assert Suppression.objects.get().address == "mixed.case@example.org"
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"


def test_a_bounce_because_the_address_is_on_the_ses_account_suppression_list_is_treated_the_same(
    email_sent, deliver_sns
):
    contact, message = email_sent

    deliver_sns(_event(SES_BOUNCE, message, contact, bounce__bounceSubType="OnAccountSuppressionList"))

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "Bounce.Permanent.OnAccountSuppressionList"
    assert Suppression.objects.get().reason == "account_suppressed"
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"


def test_a_complaint_suppresses_the_address_and_the_email_counts_as_delivered(email_sent, deliver_sns):
    contact, message = email_sent

    deliver_sns(_event(SES_COMPLAINT, message, contact))

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    suppression = Suppression.objects.get()
    assert suppression.reason == "complaint" and suppression.detail == "complaint (abuse)"
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"


def test_a_reject_fails_the_email_without_suppressing_the_address(email_sent, deliver_sns):
    contact, message = email_sent

    deliver_sns(_event(SES_REJECT, message, contact))

    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_details["reason"]) == ("failed", "Reject", "Bad content")
    assert not Suppression.objects.exists()
    assert safety_evaluate(_email_request(contact)) is None


def test_a_delivery_delay_leaves_the_email_sent(email_sent, deliver_sns):
    contact, message = email_sent

    _, summary = deliver_sns(_event(SES_DELIVERY_DELAY, message, contact))

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert summary.feedback == "ses delivery delay"
    assert not Suppression.objects.exists()


def test_an_event_is_matched_by_the_ses_message_id_when_the_tag_is_missing(email_sent, deliver_sns):
    contact, message = email_sent
    event = _event(SES_DELIVERY, message, contact).replace(str(message.pk), "not-a-uuid")

    deliver_sns(event)

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_soft_bounces_in_a_row_suppress_the_address_at_the_configured_count(
    settings, make_contact, sent_message, deliver_sns
):
    settings.EMAIL_SOFT_BOUNCE_LIMIT = 3
    contact = make_contact(opt_ins={"email": True})

    def soft_bounce(n: int) -> None:
        message = sent_message(contact, "email")
        deliver_sns(
            _event(SES_BOUNCE, message, contact, bounce__bounceType="Transient", bounce__bounceSubType="MailboxFull",
                   bounce__feedbackId=f"feedback-{n}")
        )  # fmt: skip

    soft_bounce(1)
    soft_bounce(2)
    assert EmailSoftBounce.objects.get(address=contact.email).count == 2
    assert safety_evaluate(_email_request(contact)) is None

    soft_bounce(3)

    suppression = Suppression.objects.get()
    assert suppression.reason == "soft_bounces"
    assert suppression.detail.startswith("3 soft bounces in a row")
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"


def test_a_delivery_between_soft_bounces_starts_the_count_again(settings, make_contact, sent_message, deliver_sns):
    settings.EMAIL_SOFT_BOUNCE_LIMIT = 2
    contact = make_contact(opt_ins={"email": True})
    first, second, third = (sent_message(contact, "email") for _ in range(3))

    deliver_sns(_event(SES_BOUNCE, first, contact, bounce__bounceType="Transient", bounce__feedbackId="f-1"))
    deliver_sns(_event(SES_DELIVERY, second, contact))
    deliver_sns(_event(SES_BOUNCE, third, contact, bounce__bounceType="Transient", bounce__feedbackId="f-3"))

    assert EmailSoftBounce.objects.get(address=contact.email).count == 1
    assert not Suppression.objects.exists()


def test_the_same_soft_bounce_replayed_is_counted_once(settings, email_sent):
    settings.EMAIL_SOFT_BOUNCE_LIMIT = 2
    contact, message = email_sent
    body = sns_notification(_event(SES_BOUNCE, message, contact, bounce__bounceType="Transient"))

    inbound.notification_process(body)
    inbound.notification_process(dict(body, MessageId="another-sns-copy"))  # e.g. a DLQ replay

    assert EmailSoftBounce.objects.get(address=contact.email).count == 1
    assert not Suppression.objects.exists()


def test_the_batch_worker_hands_ses_events_to_the_per_event_path(email_sent, sns_setup):
    contact, message = email_sent
    body = sns_notification(_event(SES_BOUNCE, message, contact))
    event = InboundEvent.objects.create(sns_message_id=body["MessageId"], topic_arn=body["TopicArn"], body=body)

    summary = inbound.inbound_events_process(event_ids=[str(event.pk)])

    assert summary.one_by_one == [str(event.pk)]
    assert summary.processed == []


def test_an_admin_lifts_a_suppression_audited_and_email_may_go_again(email_sent, deliver_sns):
    contact, message = email_sent
    deliver_sns(_event(SES_BOUNCE, message, contact))
    suppression = Suppression.objects.get()
    operator = user_create(email="op-lift@example.com", role="Operator")
    admin = user_create(email="admin-lift@example.com", role="Admin")

    with pytest.raises(PermissionDenied):
        suppression_lift(suppression=suppression, actor=operator, reason="try")
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"

    assert suppression_lift(suppression=suppression, actor=admin, reason="address fixed by the customer") is True

    suppression.refresh_from_db()
    assert suppression.lifted_by == admin and suppression.lift_reason == "address fixed by the customer"
    assert safety_evaluate(_email_request(contact)) is None
    audit = AuditLog.objects.get(action="suppression.lift")
    assert audit.resource_id == str(suppression.pk) and audit.details["reason"] == "hard_bounce"
    assert AuditLog.objects.filter(action="suppression.lift_denied").count() == 1


def test_a_new_hard_bounce_after_a_lift_suppresses_the_address_again(email_sent, deliver_sns):
    contact, message = email_sent
    deliver_sns(_event(SES_BOUNCE, message, contact))
    admin = user_create(email="admin-again@example.com", role="Admin")
    suppression_lift(suppression=Suppression.objects.get(), actor=admin)

    deliver_sns(_event(SES_BOUNCE, message, contact, bounce__feedbackId="second"))

    assert Suppression.objects.count() == 2
    assert Suppression.objects.active().get().provider_event_id == "second"
    assert safety_evaluate(_email_request(contact)).code == "EMAIL_SUPPRESSED"
