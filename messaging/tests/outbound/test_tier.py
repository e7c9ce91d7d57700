"""The WhatsApp tier: business-initiated conversations per number over a rolling 24 hours; alert at 80 %
once per window; TIER_LIMIT at 100 %."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from messaging.safety import SafetyRefusal
from messaging.services import message_deliver, message_send, send_request_build
from messaging.tier import (
    tier_conversation_open,
    tier_give_back,
    tier_remaining,
    tier_reserve,
    tier_reserve_many,
    tier_status,
)

pytestmark = pytest.mark.django_db

HOUR = 3600


def test_the_alert_goes_out_once_at_80_percent_and_the_limit_refuses_at_100(settings, alert_inbox, caplog):
    settings.WHATSAPP_TIER_LIMIT = 5  # alert at 4
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]

    with caplog.at_level(logging.WARNING, logger="messaging.tier"):
        granted = [tier_reserve(phone, uuid.uuid4()) for _ in range(7)]

    assert granted == [True] * 5 + [False] * 2
    [alert] = alert_inbox()
    assert phone in alert["Message"] and "4 of 5" in alert["Message"]
    assert alert["TopicArn"] == settings.SNS_TOPIC_ARN
    assert [r.getMessage() for r in caplog.records if "tier alert" in r.getMessage()] == [
        f"tier alert phone={phone} used=4 limit=5"
    ]
    assert tier_status(phone).remaining == 0 and tier_remaining([phone]) == {phone: 0}


def test_the_alert_comes_again_only_in_the_next_window(settings, alert_inbox):
    settings.WHATSAPP_TIER_LIMIT = 2  # alert at 2
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    now = time.time()

    tier_reserve(phone, uuid.uuid4(), now=now)
    tier_reserve(phone, uuid.uuid4(), now=now)
    assert len(alert_inbox()) == 1
    # a day and an hour later the window has rolled over: the count is back to zero
    later = now + 25 * HOUR
    assert tier_status(phone, now=later).used == 0
    tier_reserve(phone, uuid.uuid4(), now=later)
    tier_reserve(phone, uuid.uuid4(), now=later)

    assert len(alert_inbox()) == 1


def test_conversations_leave_the_count_24_to_25_hours_after_they_opened(settings):
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    opened = (int(time.time() // HOUR) - 30) * HOUR + 10  # ten seconds into an hour, 30 hours ago

    tier_reserve(phone, uuid.uuid4(), now=opened)

    assert tier_status(phone, now=opened + 23 * HOUR).used == 1
    assert tier_status(phone, now=opened + 24 * HOUR).used == 1  # never early
    assert tier_status(phone, now=opened + 25 * HOUR).used == 0


def test_a_second_template_to_the_same_contact_inside_its_conversation_costs_nothing(settings):
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    contact_id = uuid.uuid4()

    assert tier_reserve(phone, contact_id) and tier_reserve(phone, contact_id)

    assert tier_status(phone).used == 1
    assert tier_conversation_open(phone, contact_id)
    assert not tier_conversation_open(phone, contact_id, now=time.time() + 24 * HOUR + 1)


def test_tiers_are_counted_per_phone_number(settings):
    settings.WHATSAPP_TIER_LIMIT = 1
    first, second = settings.WHATSAPP_PHONE_NUMBER_IDS

    assert tier_reserve(first, uuid.uuid4())
    assert tier_reserve(second, uuid.uuid4())
    assert not tier_reserve(first, uuid.uuid4())
    assert tier_remaining() == {first: 0, second: 0}


def test_concurrent_workers_never_overrun_the_tier(settings):
    settings.WHATSAPP_TIER_LIMIT = 12
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    contacts = [uuid.uuid4() for _ in range(30)]

    with ThreadPoolExecutor(max_workers=10) as pool:
        granted = list(pool.map(lambda contact_id: tier_reserve(phone, contact_id), contacts))

    opened = [c for c in contacts if tier_conversation_open(phone, c)]
    assert len(opened) == 12
    assert tier_status(phone).used == 12
    assert sum(granted) == 12


def test_concurrent_sends_to_one_contact_count_one_conversation(settings):
    settings.WHATSAPP_TIER_LIMIT = 12
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    contact_id = uuid.uuid4()

    with ThreadPoolExecutor(max_workers=10) as pool:
        granted = list(pool.map(lambda _: tier_reserve(phone, contact_id), range(10)))

    # Racing workers may each count it for a moment, but the losers give their count back.
    assert all(granted)
    assert tier_conversation_open(phone, contact_id)
    assert tier_status(phone).used == 1


def test_a_business_initiated_template_past_the_tier_is_refused_at_send_and_at_delivery(
    make_contact, make_template, settings
):
    settings.WHATSAPP_TIER_LIMIT = 1
    make_template()
    first, second = make_contact(whatsapp=True, window=False), make_contact(whatsapp=True, window=False)
    template = {"template_name": "order_update", "template_language": "en_US", "template_parameters": ["A", "1"]}
    queued_first = message_send(send_request_build(contact_id=first.pk, channel="whatsapp", **template), enqueue=False)
    queued_second = message_send(
        send_request_build(contact_id=second.pk, channel="whatsapp", **template), enqueue=False
    )

    assert message_deliver(queued_first.pk).status == "sent"
    refused = message_deliver(queued_second.pk)
    with pytest.raises(SafetyRefusal) as at_send:
        message_send(send_request_build(contact_id=second.pk, channel="whatsapp", **template), enqueue=False)

    assert refused.status == "failed" and refused.error_code == "TIER_LIMIT"
    assert at_send.value.code == "TIER_LIMIT"


# --- batched reservation and give-back ----------------------------------------------------------


def test_a_chunk_reserves_its_new_conversations_in_one_update_up_to_what_the_tier_has_left(settings, dynamodb_calls):
    # given: a tier of 5 with one conversation open already, and 6 contacts of a chunk, one of them that one
    settings.WHATSAPP_TIER_LIMIT = 5
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    contacts = [uuid.uuid4() for _ in range(6)]
    assert tier_reserve(phone, contacts[0])
    dynamodb_calls.operations.clear()

    # when
    reservation = tier_reserve_many(phone, contacts)
    operations = list(dynamodb_calls.operations)

    # then: the open one needs no place, 4 of the 5 new ones get the 4 places left, in order
    assert reservation.allows(contacts[0])
    assert [reservation.allows(c) for c in contacts[1:]] == [True, True, True, True, False]
    assert tier_status(phone).used == 5
    # one read of the open conversations, one of the past hours' counts, one of the current hour, one
    # update for all the places (and one more: the 80 % alert, which this reservation reached)
    assert operations == ["BatchGetItem", "BatchGetItem", "BatchGetItem", "UpdateItem", "UpdateItem"]


def test_places_a_chunk_does_not_use_are_given_back_and_used_ones_open_their_conversation(settings):
    settings.WHATSAPP_TIER_LIMIT = 10
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    contacts = [uuid.uuid4() for _ in range(4)]
    reservation = tier_reserve_many(phone, contacts)
    assert tier_status(phone).used == 4

    # when: two were sent, one failed permanently, and the chunk stopped before the last
    reservation.settle(opened=contacts[:2], released=[contacts[2]])
    reservation.release_unused()

    # then
    assert tier_status(phone).used == 2
    assert [tier_conversation_open(phone, c) for c in contacts] == [True, True, False, False]


def test_a_place_reserved_for_a_send_that_failed_permanently_is_given_back(settings):
    settings.WHATSAPP_TIER_LIMIT = 3
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    earlier, contact_id = uuid.uuid4(), uuid.uuid4()
    assert tier_reserve(phone, earlier, now=time.time() - 60)
    opened_at = time.time()
    assert tier_reserve(phone, contact_id, now=opened_at)

    assert tier_give_back(phone, contact_id, opened_at=opened_at)

    assert tier_status(phone).used == 1
    assert not tier_conversation_open(phone, contact_id)
    # a conversation opened by an earlier send is not given back by a later failure
    assert not tier_give_back(phone, earlier, opened_at=opened_at)
    assert tier_conversation_open(phone, earlier)


def test_a_template_whose_provider_call_fails_permanently_gives_its_tier_place_back(
    make_contact, make_template, settings, live, whatsapp_stub
):
    # given: a tier of 1, and a business-initiated template to a number WhatsApp cannot deliver to
    settings.WHATSAPP_TIER_LIMIT = 1
    make_template()
    contact = make_contact(whatsapp=True, window=False)
    template = {"template_name": "order_update", "template_language": "en_US", "template_parameters": ["A", "1"]}
    message = message_send(send_request_build(contact_id=contact.pk, channel="whatsapp", **template), enqueue=False)
    whatsapp_stub.error("send_whatsapp_message", "ValidationException", 400, "(#131026) Message undeliverable")

    # when
    failed = message_deliver(message.pk)

    # then: the message failed permanently and the tier has its place again
    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    assert failed.status == "failed"
    assert tier_status(phone).used == 0
    assert not tier_conversation_open(phone, contact.pk)
