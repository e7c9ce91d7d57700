"""The gate's suppression rule, one by one and in batches (bulk chunks read a batch's suppressions in one
query per channel)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.feedback.suppressions import suppression_add
from messaging.outbound.request import send_request_build
from messaging.safety import Clearance, Refusal, safety_evaluate, safety_evaluate_many

pytestmark = pytest.mark.django_db


def _email(contact):
    return send_request_build(contact_id=contact.pk, channel="email", subject="News", text="Hello", contact=contact)


def test_a_batch_refuses_exactly_the_suppressed_recipients_with_one_query_for_their_suppressions(make_contact):
    contacts = [make_contact(opt_ins={"email": True}) for _ in range(6)]
    for contact in contacts[:2]:
        suppression_add(channel="email", address=contact.email, reason="complaint", contact=contact)
    suppression_add(channel="sms", address=contacts[2].phone, reason="sms_invalid")  # another channel

    with CaptureQueriesContext(connection) as queries:
        results = safety_evaluate_many([_email(c) for c in contacts])

    assert [r.code if isinstance(r, Refusal) else "ok" for r in results] == [
        "EMAIL_SUPPRESSED", "EMAIL_SUPPRESSED", "ok", "ok", "ok", "ok"
    ]  # fmt: skip
    assert all(isinstance(r, Clearance) for r in results[2:])
    suppression_queries = [q for q in queries.captured_queries if "messaging_suppression" in q["sql"]]
    assert len(suppression_queries) == 1


def test_an_expired_or_lifted_suppression_no_longer_refuses(make_contact):
    contact = make_contact(opt_ins={"email": True})
    now = timezone.now()
    suppression_add(
        channel="email", address=contact.email, reason="hard_bounce", now=now - timedelta(days=2),
        expires_at=now - timedelta(days=1),
    )  # fmt: skip

    assert safety_evaluate(_email(contact)) is None


def test_a_refusal_names_the_expiry_of_a_suppression_that_has_one(make_contact):
    contact = make_contact(opt_ins={"whatsapp": True})
    until = timezone.now() + timedelta(days=7)
    suppression_add(channel="whatsapp", address=contact.phone, reason="whatsapp_undeliverable", expires_at=until)
    contact.last_inbound_message_at = timezone.now()  # in the window: free-form text is allowed
    contact.save(update_fields=["last_inbound_message_at"])
    text = send_request_build(contact_id=contact.pk, channel="whatsapp", text="hi", contact=contact)

    refusal = safety_evaluate(text, contact=contact)

    assert refusal.code == "WHATSAPP_SUPPRESSED"
    assert f"until {until:%Y-%m-%d %H:%M} UTC" in refusal.reason
