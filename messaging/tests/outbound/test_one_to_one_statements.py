"""The one-to-one path's combined statements (messaging.outbound.statements) write and read what the
one-by-one statements did, and the suppression flag read with the contact never lets a suppressed
address through. Runs on PostgreSQL (one statement each) and on SQLite (the one-by-one branch)."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import AuditLog
from accounts.services import user_create
from contacts.models import Contact
from messaging.feedback.suppressions import suppression_add, suppression_known_clear
from messaging.models import MessageStatus, MessageUsage, ProviderAttempt
from messaging.outbound.request import OutgoingMedia, contact_for_send, send_request_build
from messaging.services import message_deliver, message_send

pytestmark = pytest.mark.django_db


def _operator(email: str):
    return user_create(email=email, role="Operator")


def test_message_media_and_audit_entry_are_written_together(make_contact, django_capture_on_commit_callbacks):
    contact = make_contact(whatsapp=True, window=True)
    user = _operator(f"statements-{contact.pk.hex[:8]}@example.com")
    media = OutgoingMedia(content_type="image/png", size=4, filename="a.png", s3_key="outgoing/a.png")
    request = send_request_build(contact_id=contact.pk, channel="whatsapp", text="Look", media=media)

    with django_capture_on_commit_callbacks(execute=False):
        message = message_send(request, requested_by=user)

    message.refresh_from_db()
    assert (message.status, message.content, message.message_type) == (MessageStatus.QUEUED, "Look", "image")
    assert [(f.s3_key, f.filename, f.size) for f in message.media.all()] == [("outgoing/a.png", "a.png", 4)]
    entry = AuditLog.objects.get(resource_type="message", resource_id=str(message.pk))
    assert (entry.action, entry.user, entry.details["contactId"]) == ("message.send", user, str(contact.pk))


def test_the_api_answers_with_the_media_it_wrote(make_contact, django_capture_on_commit_callbacks, reset_aws):
    contact = make_contact(whatsapp=True, window=True)
    client = APIClient()
    client.force_authenticate(_operator(f"api-media-{contact.pk.hex[:8]}@example.com"))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/messages/", {"contactId": str(contact.pk), "channel": "whatsapp", "text": "Hi"}, format="json"
        )
    assert response.status_code == 202, response.content
    assert response.json()["media"] == []


@pytest.mark.parametrize("channel", ["whatsapp", "sms", "email"])
def test_a_suppressed_address_is_refused_at_the_request_though_the_contact_is_read_with_its_flag(make_contact, channel):
    contact = make_contact(whatsapp=True, sms=True, email_opt_in=True, window=True)
    address = contact.email.upper() if channel == "email" else contact.phone  # emails match in any case
    suppression_add(channel=channel, address=address, reason="complaint")

    assert contact_for_send(contact.pk, channel).suppression_flag_seen is True
    subject = "Hi" if channel == "email" else ""
    request = send_request_build(contact_id=contact.pk, channel=channel, text="Hi", subject=subject)
    with pytest.raises(Exception, match="suppressed") as refused:
        message_send(request)
    assert refused.value.code == f"{channel.upper()}_SUPPRESSED"


def test_the_flag_vouches_only_for_an_address_compared_exactly_as_the_gate_would():
    # The database lower-cases an email for the flag; Python's lower() agrees with it only on ASCII,
    # and the gate trims addresses: otherwise the gate asks the suppressions as it always did.
    def clear(email: str, *, channel="email", seen=False) -> bool:
        contact = Contact(email=email, phone="+919900000001")
        contact.suppression_flag_channel, contact.suppression_flag_seen = channel, seen
        return suppression_known_clear(contact, "email")

    assert clear("Asha@Example.org") is True
    assert clear("Asha@Example.org", seen=True) is False
    assert clear("Asha@Example.org", channel="sms") is False
    assert clear("Åsa@example.org") is False
    assert clear(" asha@example.org") is False
    assert suppression_known_clear(Contact(email="asha@example.org"), "email") is False  # read without a flag


def test_a_suppression_added_after_queueing_stops_the_delivery(make_contact, provider_calls):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    suppression_add(channel="sms", address=contact.phone, reason="sms_blocked")

    row = message_deliver(message.pk)

    assert (row.status, row.error_code) == (MessageStatus.FAILED, "SMS_SUPPRESSED")
    assert provider_calls == []
    assert not ProviderAttempt.objects.filter(message_id=message.pk).exists()


def test_a_delivery_records_attempt_message_and_usage(make_contact):
    contacts = [make_contact(sms=True) for _ in range(2)]
    messages = [
        message_send(send_request_build(contact_id=c.pk, channel="sms", text="Hi"), enqueue=False) for c in contacts
    ]

    rows = [message_deliver(m.pk) for m in messages]

    assert [r.status for r in rows] == [MessageStatus.SENT, MessageStatus.SENT]
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.locked_until, row.attempts, row.dry_run) == (MessageStatus.SENT, None, 1, True)
        attempt = ProviderAttempt.objects.get(message_id=row.pk)
        assert attempt.outcome == ProviderAttempt.Outcome.DRY_RUN and attempt.finished_at is not None
    usage = MessageUsage.objects.get(channel="sms", dry_run=True)
    assert (usage.count, usage.kind) == (2, MessageUsage.Kind.FREE_FORM)


def test_a_message_not_queued_is_returned_untouched(make_contact):
    contact = make_contact(sms=True)
    message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"), enqueue=False)
    message_deliver(message.pk)

    again = message_deliver(message.pk)

    assert again.status == MessageStatus.SENT
    assert ProviderAttempt.objects.filter(message_id=message.pk).count() == 1
    assert connection.vendor in ("postgresql", "sqlite")
