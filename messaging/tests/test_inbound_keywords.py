"""Opt-out and opt-in keywords: consent changes with source inbound_keyword, visible to operators."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from accounts.models import AuditLog
from contacts.models import ConsentEvent, Contact
from contacts.services import contact_create, contact_set_opt_in
from messaging import inbound
from messaging.models import Message
from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]


@pytest.fixture
def contact():
    return contact_create(name="Diego", phone="+14255550150", opt_ins={"whatsapp": True, "sms": True}, source="admin")


def _text(body: str, *, timestamp: int | None = None) -> Message:
    wamid = f"wamid.test-{uuid.uuid4().hex}"
    message = {"id": wamid, "type": "text", "text": {"body": body}}
    if timestamp is not None:
        message["timestamp"] = str(timestamp)
    inbound.notification_process(sns_notification(eum_envelope(inbound_value(message))))
    return Message.objects.get(whatsapp_message_id=wamid)


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "  Stop \n", "STOPALL", "UNSUBSCRIBE", "cancel", "End", "QUIT", "revoke", "OptOut"]
)
def test_an_opt_out_keyword_turns_whatsapp_consent_off_with_history_and_a_visible_flag(contact, body):
    message = _text(body)

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False
    assert contact.opt_in_sms is True  # only the channel it came on
    event = ConsentEvent.objects.filter(contact=contact).latest("changed_at")
    assert (event.channel, event.old_value, event.new_value, event.source) == (
        "whatsapp",
        True,
        False,
        "inbound_keyword",
    )
    assert message.keyword_action == "opt_out"
    audit = AuditLog.objects.get(action="inbound.keyword", resource_id=str(message.pk))
    assert audit.details["action"] == "opt_out"
    assert audit.details["changed"] is True


@pytest.mark.parametrize("body", ["STOP please", "stop!", "don't stop", "STOP STOP", "", "SToP it"])
def test_text_that_merely_contains_a_keyword_changes_nothing(contact, body):
    message = _text(body)

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True
    assert message.keyword_action == ""
    assert not ConsentEvent.objects.filter(contact=contact, source="inbound_keyword").exists()


def test_start_turns_whatsapp_consent_back_on(contact):
    now = int(datetime.now(UTC).timestamp())
    _text("STOP", timestamp=now - 60)
    message = _text(" start ", timestamp=now - 30)

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True
    assert message.keyword_action == "opt_in"
    assert list(
        ConsentEvent.objects.filter(contact=contact, source="inbound_keyword")
        .order_by("changed_at")
        .values_list("new_value", flat=True)
    ) == [False, True]


def test_a_late_start_does_not_undo_a_newer_stop_but_a_late_stop_always_counts(contact):
    now = int(datetime.now(UTC).timestamp())
    contact_set_opt_in(contact=contact, channel="whatsapp", value=False, source="ui")  # just now

    late_start = _text("START", timestamp=now - 120)  # sent before that change
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False
    assert late_start.keyword_action == "opt_in"
    assert AuditLog.objects.get(action="inbound.keyword", resource_id=str(late_start.pk)).details["superseded"] is True

    contact_set_opt_in(contact=contact, channel="whatsapp", value=True, source="ui")
    _text("STOP", timestamp=now - 300)  # older still, yet an opt-out is honoured
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False


def test_start_and_stop_arriving_out_of_order_end_opted_out(contact):
    now = int(datetime.now(UTC).timestamp())
    _text("START", timestamp=now - 10)  # sent last, arrives first...
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True
    _text("STOP", timestamp=now - 20)  # ...an older STOP arrives late: opt-outs always count
    _text("START", timestamp=now - 30)  # and a still older START must not undo it
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False


def test_stop_from_an_unknown_sender_makes_a_contact_without_consent_and_is_flagged():
    message = _text("STOP")

    contact = Contact.objects.get()
    assert contact.opt_in_whatsapp is False
    assert message.keyword_action == "opt_out"
    assert not ConsentEvent.objects.exists()  # nothing changed: there was no consent to withdraw
    assert AuditLog.objects.get(action="inbound.keyword").details["changed"] is False


def test_the_keyword_lists_are_settings(contact, settings):
    settings.INBOUND_OPT_OUT_KEYWORDS = ["BASTA"]
    settings.INBOUND_OPT_IN_KEYWORDS = ["ANCORA"]

    now = int(datetime.now(UTC).timestamp())
    _text("STOP", timestamp=now - 30)
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True
    _text("basta", timestamp=now - 20)
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False
    _text("Ancora", timestamp=now - 10)
    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True


def test_a_keyword_delivered_twice_is_applied_once(contact):
    wamid = f"wamid.test-{uuid.uuid4().hex}"
    body = sns_notification(eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": "STOP"}})))

    inbound.notification_process(body)
    contact_set_opt_in(contact=contact, channel="whatsapp", value=True, source="ui")  # the customer agreed again
    inbound.notification_process(dict(body, MessageId=str(uuid.uuid4())))  # the old STOP, redelivered

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True
    assert ConsentEvent.objects.filter(contact=contact, source="inbound_keyword").count() == 1


def test_a_quick_reply_button_with_a_keyword_counts_as_the_keyword(contact):
    wamid = f"wamid.test-{uuid.uuid4().hex}"
    message = {"id": wamid, "type": "button", "button": {"payload": "STOP", "text": "Stop"}}
    inbound.notification_process(sns_notification(eum_envelope(inbound_value(message))))

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is False


def test_the_settings_refuse_a_word_in_both_lists(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import wecare.settings as live_settings

    monkeypatch.setenv("INBOUND_OPT_IN_KEYWORDS", "START,stop")
    with pytest.raises(ImproperlyConfigured, match="STOP"):
        importlib.reload(live_settings)
    monkeypatch.delenv("INBOUND_OPT_IN_KEYWORDS")
    importlib.reload(live_settings)
