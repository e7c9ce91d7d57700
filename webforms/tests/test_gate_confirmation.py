"""The gate's one exception to the email opt-in (messaging.safety, rule 3): the double opt-in
confirmation, exactly as stored, to the address that asked, once per address per day, within 24 hours
of the request — and nothing else."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from contacts.models import Contact
from contacts.services import contact_set_opt_in
from messaging.models import Message
from messaging.outbound.request import SendRequest
from messaging.safety import RefusalCode, SafetyRefusal, safety_consent_current, safety_consent_recheck, safety_evaluate
from messaging.services import message_send, send_request_build
from webforms.models import EmailConfirmation, FormSubmission

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(make_form):
    """A pending confirmation for a contact without email consent, not emailed yet."""
    form = make_form()
    contact = Contact.objects.create(email="asha@example.org")
    submission = FormSubmission.objects.create(form=form, version=form.current_version, contact=contact)
    return EmailConfirmation.objects.create(
        submission=submission,
        contact=contact,
        email="asha@example.org",
        subject="Please confirm your email: Stay in touch",
        text="Please confirm by opening this link: https://example.org/f/confirm/abc/",
    )


def confirmation_request(pending: EmailConfirmation, **changes) -> SendRequest:
    request = send_request_build(
        contact_id=pending.contact_id, channel="email", subject=pending.subject, text=pending.text
    )
    return dataclasses.replace(request, **{"confirms_email_request": pending.pk, **changes})


def refusal_reason(request: SendRequest) -> str:
    refusal = safety_evaluate(request)
    assert refusal is not None and refusal.code == RefusalCode.OPT_IN_REQUIRED
    return refusal.reason


def test_the_pending_confirmation_passes_without_email_consent(pending):
    assert safety_evaluate(confirmation_request(pending)) is None
    assert safety_consent_current(confirmation_request(pending)).exists()
    safety_consent_recheck(confirmation_request(pending))  # no refusal


def test_the_same_email_without_naming_the_confirmation_is_refused(pending):
    request = send_request_build(
        contact_id=pending.contact_id, channel="email", subject=pending.subject, text=pending.text
    )

    assert refusal_reason(request) == "the contact has not opted in to Email"


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Big sale this weekend"},
        {"text": "Buy now: https://example.org/sale"},
        {"html": "<p>Please confirm</p>"},
    ],
)
def test_any_other_content_is_refused(pending, changes):
    assert "is not the confirmation that was asked for" in refusal_reason(confirmation_request(pending, **changes))


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_no_other_channel_can_use_the_exception(pending, channel):
    Contact.objects.filter(pk=pending.contact_id).update(phone="+919876543210")
    request = dataclasses.replace(
        send_request_build(contact_id=pending.contact_id, channel=channel, text=pending.text),
        confirms_email_request=pending.pk,
    )

    assert "only an email can confirm a double opt-in" in refusal_reason(request)


def test_a_confirmation_of_another_contact_is_refused(pending):
    other = Contact.objects.create(email="ravi@example.org")
    request = dataclasses.replace(
        send_request_build(contact_id=other.pk, channel="email", subject=pending.subject, text=pending.text),
        confirms_email_request=pending.pk,
    )

    assert "no such confirmation request for this contact" in refusal_reason(request)


def test_an_unknown_or_malformed_confirmation_id_is_refused(pending):
    assert "no such confirmation" in refusal_reason(confirmation_request(pending, confirms_email_request="nope"))
    assert "no such confirmation" in refusal_reason(
        confirmation_request(pending, confirms_email_request="00000000-0000-0000-0000-000000000000")
    )


def test_a_request_24_hours_old_is_refused(pending):
    EmailConfirmation.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(hours=24))

    assert "more than 24 hours old" in refusal_reason(confirmation_request(pending))
    assert not safety_consent_current(confirmation_request(pending)).exists()
    with pytest.raises(SafetyRefusal):
        safety_consent_recheck(confirmation_request(pending))


def test_a_confirmed_request_is_not_an_exception_any_more(pending):
    EmailConfirmation.objects.filter(pk=pending.pk).update(confirmed_at=timezone.now())

    assert "confirmed already" in refusal_reason(confirmation_request(pending))
    assert not safety_consent_current(confirmation_request(pending)).exists()


def test_a_contact_whose_email_changed_is_refused(pending):
    Contact.objects.filter(pk=pending.contact_id).update(email="new@example.org")

    assert "not the one that asked" in refusal_reason(confirmation_request(pending))


def test_an_opt_out_after_the_request_is_refused(pending):
    contact = pending.contact
    contact_set_opt_in(contact=contact, channel="email", value=True, source="ui")
    contact_set_opt_in(contact=contact, channel="email", value=False, source="ui")

    assert "opted out of Email after asking" in refusal_reason(confirmation_request(pending))


def test_a_second_confirmation_to_the_same_address_within_a_day_is_refused(pending, make_form):
    earlier = EmailConfirmation.objects.create(
        submission=FormSubmission.objects.create(
            form=pending.submission.form, version=pending.submission.version, contact=pending.contact
        ),
        contact=pending.contact,
        email=pending.email,
        subject="s",
        text="t",
        emailed_at=timezone.now() - timedelta(hours=23),
    )

    assert "in the last 24 hours" in refusal_reason(confirmation_request(pending))

    EmailConfirmation.objects.filter(pk=earlier.pk).update(emailed_at=timezone.now() - timedelta(hours=25))
    assert safety_evaluate(confirmation_request(pending)) is None


def test_a_deleted_contact_is_refused_as_ever(pending):
    Contact.objects.filter(pk=pending.contact_id).update(deleted_at=timezone.now())

    refusal = safety_evaluate(confirmation_request(pending))

    assert refusal.code == RefusalCode.CONTACT_NOT_FOUND


def test_one_confirmation_is_one_message_and_its_redelivery_passes_the_gate_again(pending):
    message = message_send(confirmation_request(pending), audit=False)
    EmailConfirmation.objects.filter(pk=pending.pk).update(emailed_at=timezone.now())

    # The worker's second look rebuilds the request from the stored message: the same exception.
    assert safety_evaluate(SendRequest.from_message(message)) is None
    # A second message for the same confirmation is impossible (one-to-one).
    with pytest.raises(IntegrityError):
        message_send(confirmation_request(pending), audit=False)
    assert Message.objects.filter(email_confirmation=pending).count() == 1
