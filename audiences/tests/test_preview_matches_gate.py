"""The preview's SQL classification decides as the gate does, for every kind of contact."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.selectors import gate_code_annotation, segment_preview
from contacts.models import Contact
from contacts.search import build_search_text
from messaging.models import Suppression, SuppressionReason, TemplateStatus, WhatsAppTemplate
from messaging.safety import SendRequest, safety_evaluate_many

PHONE_ID = "phone-number-id-audiences"

MESSAGES = {
    "whatsapp template": {"channel": "whatsapp", "message_type": "template", "template_name": "seg_hello",
                              "template_language": "en_US", "template_parameters": ["Asha"]},
    "whatsapp text": {"channel": "whatsapp", "message_type": "text", "text": "Hello"},
    "sms text": {"channel": "sms", "message_type": "text", "text": "Hello"},
    "email": {"channel": "email", "message_type": "email", "subject": "Hi", "text": "Hello"},
}  # fmt: skip


@pytest.fixture
def every_kind_of_contact(db, settings):
    """Every combination of opt-ins, addresses and last inbound time (window edges included)."""
    settings.WHATSAPP_PHONE_NUMBER_IDS = [PHONE_ID]
    WhatsAppTemplate.objects.create(
        name="seg_hello", language="en_US", category="MARKETING", status=TemplateStatus.APPROVED,
        body="Hello {{1}}", body_parameters=["1"], parameter_format="positional",
    )  # fmt: skip
    now = timezone.now()
    inbound = [None, now - timedelta(hours=1), now - timedelta(hours=23, minutes=59, seconds=59),
               now - timedelta(hours=24), now - timedelta(days=2), now + timedelta(seconds=5)]  # fmt: skip
    addresses = ["phone", "email", "both", "whatsapp user id only"]
    contacts = []
    for n, (wa, sms, email, address, last) in enumerate(
        itertools.product([True, False], [True, False], [True, False], addresses, inbound)
    ):
        phone = f"+9194{n:08d}" if address in ("phone", "both") else None
        mail = f"seg{n}@example.com" if address in ("email", "both") else None
        bsuid = f"US.{n}" if address == "whatsapp user id only" else None
        contacts.append(
            Contact(
                name=f"Seg {n}", phone=phone, email=mail, whatsapp_user_id=bsuid,
                opt_in_whatsapp=wa, opt_in_sms=sms, opt_in_email=email, last_inbound_message_at=last,
                search_text=build_search_text(name=f"Seg {n}", phone=phone, email=mail),
            )
        )  # fmt: skip
    Contact.objects.bulk_create(contacts)
    _suppress_some(contacts, now)
    deleted = Contact.objects.create(name="Gone", phone="+919300000001", opt_in_whatsapp=True, deleted_at=now)
    return now, deleted


def _suppress_some(contacts, now) -> None:
    """Channel-wide suppressions on some addresses; lifted and expired ones, which no longer refuse."""
    phones = [c.phone for c in contacts if c.phone]
    emails = [c.email for c in contacts if c.email]
    rows = [
        Suppression(channel=channel, address=phone, reason=SuppressionReason.SMS_INVALID)
        for channel in ("sms", "whatsapp")
        for phone in phones[::7]
    ]
    rows += [Suppression(channel="email", address=email, reason=SuppressionReason.HARD_BOUNCE) for email in emails[::5]]
    rows += [
        Suppression(channel="sms", address=phones[1], reason=SuppressionReason.SMS_BLOCKED, lifted_at=now),
        Suppression(channel="email", address=emails[1], reason=SuppressionReason.SOFT_BOUNCES,
                    expires_at=now - timedelta(minutes=1)),
    ]  # fmt: skip
    Suppression.objects.bulk_create(rows)


def _gate_codes(message: dict, contacts, now) -> dict[str, str]:
    requests = [
        SendRequest(contact_id=c.pk, origination_phone_number_id=PHONE_ID if message["channel"] == "whatsapp" else "",
                    **message)
        for c in contacts
    ]  # fmt: skip
    # The tier is not a contact rule: every place is granted here, so only the contact decides.
    decisions = safety_evaluate_many(requests, now=now, tier_allows=lambda *_: True)
    return {str(r.contact_id): getattr(d, "code", "") for r, d in zip(requests, decisions, strict=True)}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_the_preview_classifies_every_contact_as_the_gate_decides(every_kind_of_contact, kind):
    # given
    now, _deleted = every_kind_of_contact
    message = MESSAGES[kind]
    contacts = list(Contact.objects.active())
    # when
    expected = _gate_codes(message, contacts, now)
    code = gate_code_annotation(channel=message["channel"], message_type=message["message_type"], now=now)
    classified = dict(Contact.objects.active().annotate(gate_code=code).values_list("pk", "gate_code"))
    # then
    assert {str(pk): value for pk, value in classified.items()} == expected
    assert len(set(expected.values())) >= 3  # the fixture really exercises several rules


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_the_preview_counts_are_the_gate_decisions_counted(every_kind_of_contact, kind):
    now, deleted = every_kind_of_contact
    message = MESSAGES[kind]
    spec = {"hasAddress": ["sms"]}  # some members, not all
    members = list(Contact.objects.active().filter(phone__isnull=False))
    expected = Counter(_gate_codes(message, members, now).values())

    preview = segment_preview(spec, channel=message["channel"], message_type=message["message_type"], now=now)

    assert preview.total == len(members) == sum(expected.values())
    assert preview.will_send == expected.pop("")
    assert preview.skipped == dict(expected)
    assert deleted.pk not in {row["contactId"] for row in preview.sample}
    if kind == "whatsapp template":
        codes = _gate_codes(message, members, now)
        outside = [c for c in members if codes[str(c.pk)] == "" and not (
            c.last_inbound_message_at and now - c.last_inbound_message_at < timedelta(hours=24))]  # fmt: skip
        assert preview.opens_conversation == len(outside)
