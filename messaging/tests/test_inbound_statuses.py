"""Status events move our outbound WhatsApp messages forward only; failed carries Meta's error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contacts.services import contact_create
from messaging import inbound
from messaging.models import Direction, Message, MessageStatus
from messaging.tests.inbound_fixtures import process_fixture
from messaging.tests.sns_signing import PHONE_NUMBER_ID, eum_envelope, sns_notification, status_value

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]

DELIVERED_WAMID = "wamid.HBgLMTkxNzM5OTI3MzkVAgARGBJBMTM4NDdGRENEREI5Rexample"
FAILED_WAMID = "wamid.HBgLMTQyNTU1NTAxNTAVAgARGBI3RjE2QUQ4NUY1QzA5RTJEMjQA"


@pytest.fixture
def contact():
    return contact_create(name="Diego", phone="+14255550150", opt_ins={"whatsapp": True}, source="admin")


def _outbound(contact, **fields) -> Message:
    defaults = {
        "contact": contact,
        "channel": "whatsapp",
        "direction": Direction.OUTBOUND,
        "content": "Your order shipped",
        "status": MessageStatus.SENT,
        "origination_phone_number_id": PHONE_NUMBER_ID,
    }
    return Message.objects.create(**{**defaults, **fields})


def _status(wamid: str, status: str, timestamp: int, *, envelope_message_id: str | None = None, **extra):
    body = sns_notification(
        eum_envelope(status_value({"id": wamid, "status": status, "timestamp": str(timestamp), **extra}),
                     message_id=envelope_message_id)
    )  # fmt: skip
    return inbound.notification_process(body)


def test_the_delivered_fixture_moves_the_matching_message_to_delivered(client, contact):
    message = _outbound(contact, whatsapp_message_id=DELIVERED_WAMID)

    summary = process_fixture(client, "sns-notification-status-delivered.json")

    message.refresh_from_db()
    assert summary.statuses_applied == [DELIVERED_WAMID]
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at == datetime.fromtimestamp(1736379044, tz=UTC)


def test_the_failed_fixture_records_metas_error(client, contact):
    message = _outbound(contact, whatsapp_message_id=FAILED_WAMID)

    process_fixture(client, "sns-notification-status-failed.json")

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.failed_at == datetime.fromtimestamp(1736380201, tz=UTC)
    assert message.error_code == "131047"
    assert message.error_details["title"] == "Re-engagement message"
    assert message.error_details["details"].startswith("Message failed to send because more than 24 hours")
    assert message.error_details["href"].startswith("https://developers.facebook.com/")
    assert message.error_details["errors"][0]["code"] == 131047


def test_a_status_finds_its_message_by_our_uuid_in_callback_data_and_stores_the_wamid(contact):
    message = _outbound(contact)
    wamid = f"wamid.{uuid.uuid4().hex}"

    _status(wamid, "delivered", 1_750_000_000, biz_opaque_callback_data=str(message.pk))

    message.refresh_from_db()
    assert (message.status, message.whatsapp_message_id) == (MessageStatus.DELIVERED, wamid)
    _status(wamid, "read", 1_750_000_010)  # the next one matches by wamid alone
    message.refresh_from_db()
    assert message.status == MessageStatus.READ


def test_a_status_finds_its_message_by_the_provider_message_id_in_the_envelope(contact):
    provider_id = str(uuid.uuid4())
    message = _outbound(contact, provider_message_id=provider_id)
    wamid = f"wamid.{uuid.uuid4().hex}"

    _status(wamid, "delivered", 1_750_000_000, envelope_message_id=provider_id)

    message.refresh_from_db()
    assert (message.status, message.whatsapp_message_id) == (MessageStatus.DELIVERED, wamid)


def test_statuses_move_forward_only_and_a_late_delivered_after_read_changes_nothing_but_its_time(contact):
    wamid = f"wamid.{uuid.uuid4().hex}"
    message = _outbound(contact, whatsapp_message_id=wamid, status=MessageStatus.QUEUED)

    _status(wamid, "sent", 1_750_000_000)
    _status(wamid, "read", 1_750_000_020)
    summary = _status(wamid, "delivered", 1_750_000_010)  # arrives last
    _status(wamid, "sent", 1_750_000_000)  # SNS redelivers an old one

    message.refresh_from_db()
    assert summary.statuses_ignored == [wamid]
    assert message.status == MessageStatus.READ
    assert message.read_at == datetime.fromtimestamp(1_750_000_020, tz=UTC)
    assert message.delivered_at == datetime.fromtimestamp(1_750_000_010, tz=UTC)
    assert message.sent_at == datetime.fromtimestamp(1_750_000_000, tz=UTC)


def test_failed_does_not_replace_read_but_replaces_delivered(contact):
    read = _outbound(contact, whatsapp_message_id=f"wamid.{uuid.uuid4().hex}", status=MessageStatus.READ)
    delivered = _outbound(contact, whatsapp_message_id=f"wamid.{uuid.uuid4().hex}", status=MessageStatus.DELIVERED)
    errors = [{"code": 131026, "title": "Message undeliverable"}]

    _status(read.whatsapp_message_id, "failed", 1_750_000_000, errors=errors)
    _status(delivered.whatsapp_message_id, "failed", 1_750_000_000, errors=errors)

    read.refresh_from_db()
    delivered.refresh_from_db()
    assert (read.status, read.error_code) == (MessageStatus.READ, "")
    assert (delivered.status, delivered.error_code) == (MessageStatus.FAILED, "131026")


def test_a_status_for_a_message_that_is_not_ours_changes_nothing(contact):
    inbound_message = Message.objects.create(
        contact=contact, channel="whatsapp", direction=Direction.INBOUND, status=MessageStatus.RECEIVED,
        whatsapp_message_id="wamid.inbound",
    )  # fmt: skip

    summary = _status("wamid.inbound", "read", 1_750_000_000)
    unknown = _status("wamid.unknown", "delivered", 1_750_000_000, biz_opaque_callback_data="not-a-uuid")

    inbound_message.refresh_from_db()
    assert inbound_message.status == MessageStatus.RECEIVED
    assert summary.statuses_ignored == ["wamid.inbound"]
    assert unknown.statuses_ignored == ["wamid.unknown"]


def test_statuses_meta_does_not_track_here_are_ignored(contact):
    wamid = f"wamid.{uuid.uuid4().hex}"
    message = _outbound(contact, whatsapp_message_id=wamid)

    summary = _status(wamid, "deleted", 1_750_000_000)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert summary.statuses_ignored == [wamid]


def test_a_pricing_block_without_conversation_is_accepted(contact):
    wamid = f"wamid.{uuid.uuid4().hex}"
    message = _outbound(contact, whatsapp_message_id=wamid)

    _status(wamid, "delivered", 1_750_000_000, pricing={"billable": True, "pricing_model": "PMP", "type": "regular"})

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
