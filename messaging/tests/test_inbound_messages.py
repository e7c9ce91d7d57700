"""Inbound messages: decoded, stored once with their contact, the 24-hour window kept forward-only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from accounts.models import AuditLog
from contacts.models import ConsentEvent, Contact
from contacts.services import contact_create
from messaging import inbound
from messaging.models import Direction, InboundEvent, Message, MessageStatus, MessageType
from messaging.tests.inbound_fixtures import process_fixture
from messaging.tests.sns_signing import (
    PHONE_NUMBER_ID,
    eum_envelope,
    fixture_body,
    inbound_value,
    sns_notification,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]

FIXTURE_WAMID = "wamid.HBgLMTQyNTY5ODgzMDIVAgASGCBDNzBDRjM5MDU2ODEwMDkwREY4ODBDRDE0RjVGRkexample"


def _process(message: dict, **value_kwargs) -> inbound.ProcessSummary:
    body = sns_notification(eum_envelope(inbound_value(message, **value_kwargs)))
    return inbound.notification_process(body)


def _wamid() -> str:
    return f"wamid.test-{uuid.uuid4().hex}"


def test_the_inbound_text_fixture_is_stored_with_a_new_contact_that_has_no_opt_in(client):
    summary = process_fixture(client, "sns-notification-inbound-text.json")

    assert summary.stored == [FIXTURE_WAMID]
    message = Message.objects.get()
    assert message.direction == Direction.INBOUND
    assert message.channel == "whatsapp"
    assert message.status == MessageStatus.RECEIVED
    assert message.message_type == MessageType.TEXT
    assert message.content == "Hi"
    assert message.whatsapp_message_id == FIXTURE_WAMID
    assert message.origination_phone_number_id == PHONE_NUMBER_ID
    assert message.sender_name == "Diego"
    assert message.created_at == datetime.fromtimestamp(1723506035, tz=UTC)
    assert message.whatsapp_payload["text"] == {"body": "Hi"}
    contact = message.contact
    assert (contact.phone, contact.name) == ("+14255550150", "Diego")
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (False, False, False)
    assert contact.last_inbound_message_at == datetime.fromtimestamp(1723506035, tz=UTC)
    assert not ConsentEvent.objects.exists()
    assert AuditLog.objects.filter(action="inbound.contact_create", resource_id=str(contact.pk)).exists()
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED


def test_the_same_fixture_delivered_again_stores_nothing_more(client):
    process_fixture(client, "sns-notification-inbound-text.json")
    again = process_fixture(client, "sns-notification-inbound-text.json")

    assert again is None  # the event itself was already processed
    assert Message.objects.count() == 1
    assert InboundEvent.objects.count() == 1


def test_the_same_wamid_in_another_sns_message_is_a_duplicate(client):
    process_fixture(client, "sns-notification-inbound-text.json")
    body = json.loads(fixture_body("sns-notification-inbound-text.json"))
    body["MessageId"] = str(uuid.uuid4())  # Meta resent it: new SNS message, same wamid

    summary = inbound.notification_process(body)

    assert summary.duplicates == [FIXTURE_WAMID]
    assert Message.objects.count() == 1
    assert Contact.objects.count() == 1


def test_a_known_sender_is_matched_to_the_existing_contact_and_keeps_its_name_and_consent():
    contact = contact_create(name="Diego R.", phone="+14255550150", opt_ins={"whatsapp": True}, source="admin")

    _process({"id": _wamid(), "type": "text", "text": {"body": "hello"}}, name="Someone Else")

    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert Message.objects.get().contact == contact
    assert contact.name == "Diego R."
    assert contact.opt_in_whatsapp is True
    assert Message.objects.get().sender_name == "Someone Else"


def test_a_deleted_contact_is_not_reused_for_a_new_message():
    from contacts.services import contact_soft_delete

    old = contact_create(name="Old", phone="+14255550150", source="admin")
    contact_soft_delete(contact=old, actor=None)

    _process({"id": _wamid(), "type": "text", "text": {"body": "back again"}})

    message = Message.objects.get()
    assert message.contact != old
    assert message.contact.phone == "+14255550150"


def test_last_inbound_message_at_moves_forward_only():
    newer, older = 1_750_000_100, 1_750_000_000
    _process({"id": _wamid(), "type": "text", "text": {"body": "newer"}, "timestamp": str(newer)})
    _process({"id": _wamid(), "type": "text", "text": {"body": "late, older"}, "timestamp": str(older)})

    contact = Contact.objects.get()
    assert contact.last_inbound_message_at == datetime.fromtimestamp(newer, tz=UTC)
    assert Message.objects.count() == 2


MESSAGE_SHAPES = [
    ({"type": "location", "location": {"latitude": 12.97, "longitude": 77.59, "name": "Office", "address": "MG Road"}},
     MessageType.LOCATION, "Office, MG Road (12.97, 77.59)"),
    ({"type": "contacts",
      "contacts": [{"name": {"formatted_name": "Asha K"}, "phones": [{"phone": "+91 98765 43210"}]}]},
     MessageType.CONTACTS, "Asha K (+91 98765 43210)"),
    ({"type": "reaction", "reaction": {"message_id": "wamid.ours", "emoji": "\U0001f44d"}},
     MessageType.REACTION, "\U0001f44d"),
    ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}},
     MessageType.INTERACTIVE, "Yes"),
    ({"type": "interactive",
      "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Tuesday", "description": "10:00"}}},
     MessageType.INTERACTIVE, "Tuesday"),
    ({"type": "interactive",
      "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": '{"rating": 5}', "body": "Sent"}}},
     MessageType.INTERACTIVE, '{"rating": 5}'),
    ({"type": "button", "button": {"payload": "CONFIRM", "text": "Confirm"}}, MessageType.BUTTON, "Confirm"),
    ({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}, MessageType.UNKNOWN, ""),
    ({"type": "text", "text": {"body": "  spaced  "}}, MessageType.TEXT, "  spaced  "),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "message_type", "content"), MESSAGE_SHAPES)
def test_every_non_media_message_type_is_stored_with_readable_content_and_its_payload(payload, message_type, content):
    wamid = _wamid()

    _process({"id": wamid, **payload})

    message = Message.objects.get(whatsapp_message_id=wamid)
    assert (message.message_type, message.content) == (message_type, content)
    assert message.whatsapp_payload["type"] == payload["type"]
    assert not message.media.exists()


@pytest.mark.parametrize(
    ("kind", "body", "content"),
    [
        ("image", {"mime_type": "image/jpeg", "id": "111", "caption": "look"}, "look"),
        ("video", {"mime_type": "video/mp4", "id": "222"}, ""),
        ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "333", "voice": True}, ""),
        ("document", {"mime_type": "application/pdf", "id": "444", "filename": "invoice.pdf"}, "invoice.pdf"),
        ("sticker", {"mime_type": "image/webp", "id": "555", "animated": False}, ""),
    ],
)
def test_media_messages_are_parsed_with_their_media_reference(kind, body, content):
    parsed = inbound.parse_message({"id": "w", "type": kind, kind: body})

    assert (parsed.message_type, parsed.content, parsed.media["id"]) == (kind, content, body["id"])


def _from_user_id_only(wamid: str, user_id: str = "US.26852818834383302", name: str = "Hidden Number") -> dict:
    """A message from a user who hides their number: ``from_user_id`` and ``contacts[].user_id``, no phone."""
    body = sns_notification(eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": "hi"}})))
    envelope = json.loads(body["Message"])
    entry = json.loads(envelope["whatsAppWebhookEntry"])
    value = entry["changes"][0]["value"]
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = user_id
    value["contacts"] = [{"profile": {"name": name}, "user_id": user_id}]
    envelope["whatsAppWebhookEntry"] = json.dumps(entry)
    body["Message"] = json.dumps(envelope)
    return body


def test_a_sender_who_hides_their_number_is_stored_as_a_contact_known_by_their_user_id():
    summary = inbound.notification_process(_from_user_id_only(_wamid()))
    again = inbound.notification_process(_from_user_id_only(_wamid()))

    contact = Contact.objects.get()
    assert (contact.whatsapp_user_id, contact.phone, contact.email) == ("US.26852818834383302", None, None)
    assert contact.name == "Hidden Number" and not contact.opt_in_whatsapp
    assert len(summary.stored) == len(again.stored) == 1
    assert Message.objects.filter(contact=contact, direction="inbound").count() == 2
    assert contact.last_inbound_message_at is not None  # the 24-hour window is open
    assert list(Contact.objects.filter(search_text__contains="us.26852818834383302")) == [contact]


def test_a_sender_with_neither_a_phone_nor_a_user_id_is_a_permanent_error():
    body = _from_user_id_only(_wamid(), user_id="")

    with pytest.raises(inbound.InboundPayloadError, match="neither a phone number nor a WhatsApp user id"):
        inbound.notification_process(body)
    assert not Message.objects.exists()


def test_a_contact_created_by_an_inbound_message_records_its_source_as_inbound(client):
    process_fixture(client, "sns-notification-inbound-text.json")

    contact = Contact.objects.get()
    entry = AuditLog.objects.get(action="contact.create", resource_id=str(contact.pk))
    assert entry.details["source"] == "inbound"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(Message=json.dumps({"context": {}, "whatsAppWebhookEntry": "{"})),
        lambda b: b.update(Message=json.dumps({"whatsAppWebhookEntry": json.dumps({"changes": []})})),
        lambda b: b.update(Message=json.dumps({"context": {"MetaPhoneNumberIds": []}, "whatsAppWebhookEntry": "{}"})),
        lambda b: b.update(Type="SubscriptionConfirmation"),
    ],
)
def test_malformed_envelopes_are_permanent_errors_that_store_nothing(mutate):
    body = sns_notification(eum_envelope(inbound_value({"id": _wamid(), "type": "text", "text": {"body": "x"}})))
    mutate(body)

    with pytest.raises(inbound.InboundPayloadError):
        inbound.notification_process(body)
    assert not Message.objects.exists()
    assert not Contact.objects.exists()


def test_other_notifications_on_the_topic_are_kept_and_not_treated_as_errors(client, sns_setup):
    # The outbound side publishes WhatsApp tier alerts (plain text, with a Subject) to the same topic.
    alert = sns_notification("WhatsApp phone number phone-number-id-x has opened 800 of 1000 conversations")
    alert["Subject"] = "WhatsApp tier at 80% (test)"
    alert = sns_setup.sign(alert)
    response = client.post(
        "/webhooks/sns/", data=json.dumps(alert), content_type="text/plain", HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification"
    )
    assert response.status_code == 200
    event = InboundEvent.objects.get(sns_message_id=alert["MessageId"])

    summary = inbound.inbound_event_process(event_id=event.pk)

    assert summary.not_eum is True
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    assert not Message.objects.exists()


def test_the_receiving_number_comes_from_the_envelope_arn():
    context = {
        "MetaPhoneNumberIds": [
            {"metaPhoneNumberId": "1", "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/aaa"},
            {"metaPhoneNumberId": "2", "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/bbb"},
        ]
    }

    assert inbound.receiving_phone_number_id(context, "2") == "phone-number-id-bbb"
    with pytest.raises(inbound.InboundPayloadError):
        inbound.receiving_phone_number_id(context, "3")
