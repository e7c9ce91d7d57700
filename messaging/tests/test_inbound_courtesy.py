"""Mark-as-read and a thumbs-up reaction: off by default; when on, through the outbound service and
its safety gate (consent, allowlisted number, 24-hour window) and SEND_MODE; never in the way of
storing the message."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from botocore.stub import ANY, Stubber

from automation.services import ai_suggestion_enqueue
from contacts.services import contact_create
from messaging import inbound
from messaging.channels import provider_client
from messaging.models import Direction, Message, MessageStatus, MessageType
from messaging.tests.sns_signing import PHONE_NUMBER_ID, eum_envelope, inbound_value, sns_notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]

THUMBS_UP = "\U0001f44d"


@pytest.fixture
def opted_in():
    return contact_create(name="Diego", phone="+14255550150", opt_ins={"whatsapp": True}, source="admin")


def _receive(wamid: str | None = None, sns_message_id: str | None = None) -> Message:
    wamid = wamid or f"wamid.courtesy-{uuid.uuid4().hex}"
    body = sns_notification(
        eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": "hello"}})), message_id=sns_message_id
    )
    inbound.notification_process(body)
    return Message.objects.get(whatsapp_message_id=wamid)


def _sends(callbacks) -> list:
    """The on-commit callbacks but the AI hook's (it queues a draft suggestion, never a send)."""
    return [c for c in callbacks if getattr(c, "func", None) is not ai_suggestion_enqueue]


def _reactions():
    return Message.objects.filter(direction=Direction.OUTBOUND, message_type=MessageType.REACTION)


def test_nothing_is_sent_back_by_default(opted_in, caplog, django_capture_on_commit_callbacks):
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=False) as callbacks:
        _receive()

    assert not _reactions().exists()
    assert "read_receipt" not in caplog.text and '"status": "read"' not in caplog.text
    assert _sends(callbacks) == []


def test_a_thumbs_up_goes_out_as_a_queued_reaction_from_the_receiving_number(
    settings, opted_in, django_capture_on_commit_callbacks
):
    settings.INBOUND_REACT_THUMBS_UP = True

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        received = _receive()

    reaction = _reactions().get()
    assert (reaction.contact, reaction.content, reaction.status) == (opted_in, THUMBS_UP, MessageStatus.QUEUED)
    assert reaction.origination_phone_number_id == PHONE_NUMBER_ID
    assert reaction.whatsapp_payload == {"reaction_to": received.whatsapp_message_id}
    assert len(_sends(callbacks)) == 1  # its delivery task, enqueued when the transaction commits


def test_mark_as_read_in_dry_run_logs_the_exact_request_and_calls_nothing(settings, opted_in, caplog):
    settings.INBOUND_MARK_AS_READ = True
    with Stubber(provider_client("socialmessaging")) as stubber, caplog.at_level(logging.INFO, "messaging.services"):
        received = _receive()
        stubber.assert_no_pending_responses()  # and an unexpected call would have raised

    assert "DRY_RUN" in caplog.text
    assert f'"message_id": "{received.whatsapp_message_id}"' in caplog.text
    assert '"status": "read"' in caplog.text


def test_mark_as_read_in_live_mode_sends_the_read_receipt(settings, opted_in):
    settings.INBOUND_MARK_AS_READ = True
    settings.SEND_MODE = "LIVE"  # the provider is a Stubber: nothing leaves the machine
    wamid = f"wamid.courtesy-{uuid.uuid4().hex}"
    with Stubber(provider_client("socialmessaging")) as stubber:
        stubber.add_response(
            "send_whatsapp_message",
            {"messageId": "read-receipt-1"},
            {"originationPhoneNumberId": PHONE_NUMBER_ID, "message": ANY, "metaApiVersion": ANY},
        )
        captured = []
        provider_client("socialmessaging").meta.events.register(
            "provide-client-params.socialmessaging.SendWhatsAppMessage",
            lambda params, **kw: captured.append(json.loads(params["message"])),
            unique_id="capture-read-receipt",
        )
        try:
            _receive(wamid)
        finally:
            provider_client("socialmessaging").meta.events.unregister(
                "provide-client-params.socialmessaging.SendWhatsAppMessage", unique_id="capture-read-receipt"
            )
        stubber.assert_no_pending_responses()

    assert captured == [{"messaging_product": "whatsapp", "message_id": wamid, "status": "read"}]


def test_a_sender_without_whatsapp_consent_gets_neither_and_the_message_is_still_stored(settings, caplog):
    settings.INBOUND_MARK_AS_READ = True
    settings.INBOUND_REACT_THUMBS_UP = True

    with Stubber(provider_client("socialmessaging")), caplog.at_level(logging.INFO):
        received = _receive()  # a new contact: every opt-in false

    assert received.status == MessageStatus.RECEIVED
    assert not _reactions().exists()
    assert "OPT_IN_REQUIRED" in caplog.text
    assert "mark_as_read did not go out" in caplog.text


def test_a_duplicate_copy_does_not_react_twice(settings, opted_in):
    settings.INBOUND_REACT_THUMBS_UP = True
    wamid = f"wamid.courtesy-{uuid.uuid4().hex}"

    _receive(wamid)
    _receive(wamid)  # Meta resent it

    assert _reactions().count() == 1
