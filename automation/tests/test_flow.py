"""The whole flow: inbound WhatsApp text → a task on the AI queue → a suggestion → approval →
the one gate → sent (LIVE), not sent (DRY_RUN), refused (outside the window)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
from botocore.stub import ANY, Stubber
from django.conf import settings as django_settings
from django.test import Client

from automation import services
from automation.models import AISuggestion, SuggestionStatus
from automation.tasks import suggest_reply
from contacts.models import Contact
from messaging import inbound as messaging_inbound
from messaging.channels import provider_client
from messaging.models import Direction, Message, MessageStatus, SafetyRefusalCount
from messaging.services import message_deliver
from messaging.tests.inbound_fixtures import clean_claims, drain_queue, empty_queues, sns_setup  # noqa: F401
from messaging.tests.sns_signing import PHONE_NUMBER_ID, eum_envelope, inbound_value, sns_notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_setup", "clean_claims", "empty_queues")]

QUESTION = "Hello, what are your opening hours on Sunday?"


@pytest.fixture
def customer(db) -> Contact:
    """A customer who opted in to WhatsApp (a contact created by an inbound message has not)."""
    return Contact.objects.create(name="Diego", phone="+14255550177", opt_in_whatsapp=True)


@pytest.fixture
def ai_queue():
    drain_queue(django_settings.QUEUE_AI)
    yield lambda: drain_queue(django_settings.QUEUE_AI)


def receive(text: str, django_capture_on_commit_callbacks) -> Message:
    wamid = f"wamid.ai-{uuid.uuid4().hex}"
    body = sns_notification(eum_envelope(inbound_value({"id": wamid, "type": "text", "text": {"body": text}},
                                                       wa_id="14255550177")))  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        summary = messaging_inbound.notification_process(body)
    assert summary.stored == [wamid]
    return Message.objects.get(whatsapp_message_id=wamid)


def queued_ai_tasks(ai_queue) -> list[tuple[str, list]]:
    tasks = []
    for envelope in ai_queue():
        args = json.loads(base64.b64decode(envelope["body"]))[0]
        tasks.append((envelope["headers"]["task"], args))
    return tasks


@pytest.fixture
def operator_api(page_user) -> tuple[Client, object]:
    user = page_user("Operator")
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def whatsapp_provider():
    """Stubber on the very socialmessaging client the send path uses, and every call it got."""
    client = provider_client("socialmessaging")
    calls: list[str] = []

    def record(model, **kwargs):
        calls.append(model.name)

    client.meta.events.register("before-parameter-build.socialmessaging.*", record, unique_id="ai-flow-recorder")
    stubber = Stubber(client)
    stubber.activate()
    yield stubber, calls
    stubber.deactivate()
    client.meta.events.unregister("before-parameter-build.socialmessaging.*", unique_id="ai-flow-recorder")


def test_an_inbound_text_queues_one_ai_task_on_the_ai_queue_after_commit(
    faq, customer, ai_queue, django_capture_on_commit_callbacks
):
    message = receive(QUESTION, django_capture_on_commit_callbacks)

    assert queued_ai_tasks(ai_queue) == [("automation.tasks.suggest_reply", [str(message.pk)])]
    assert not AISuggestion.objects.exists()  # nothing drafted inside inbound processing


def test_with_ai_off_for_the_receiving_number_no_task_is_queued(
    faq, customer, ai_queue, page_user, django_capture_on_commit_callbacks
):
    services.ai_switch_set(user=page_user("Admin"), enabled=False, phone_number_id=PHONE_NUMBER_ID)

    receive(QUESTION, django_capture_on_commit_callbacks)

    assert queued_ai_tasks(ai_queue) == []


def test_an_ai_failure_cannot_lose_the_inbound_message(
    customer, ai_queue, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("the AI configuration table is gone")

    monkeypatch.setattr(services, "ai_enabled_for", broken)

    message = receive(QUESTION, django_capture_on_commit_callbacks)

    assert message.status == MessageStatus.RECEIVED and message.content == QUESTION
    assert queued_ai_tasks(ai_queue) == []


def test_approved_in_live_mode_the_suggestion_is_sent_through_the_gate_to_whatsapp(
    faq, customer, ai_queue, operator_api, whatsapp_provider, settings, django_capture_on_commit_callbacks
):
    settings.SEND_MODE = "LIVE"
    stubber, calls = whatsapp_provider
    inbound = receive(QUESTION, django_capture_on_commit_callbacks)
    [(_, args)] = queued_ai_tasks(ai_queue)
    suggestion = AISuggestion.objects.get(pk=suggest_reply(*args))  # the task body, as the worker runs it
    client, operator = operator_api

    response = client.post(f"/api/ai/suggestions/{suggestion.pk}/approve/", {}, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    suggestion.refresh_from_db()
    sent = suggestion.sent_message
    assert (sent.direction, sent.channel, sent.content) == (
        Direction.OUTBOUND, "whatsapp", "We are open on Sundays from 10:00 to 14:00.")  # fmt: skip
    assert sent.origination_phone_number_id == inbound.origination_phone_number_id == PHONE_NUMBER_ID
    assert (suggestion.decided_by, sent.requested_by) == (operator, operator)
    stubber.add_response(
        "send_whatsapp_message",
        {"messageId": "aws-ai-1"},
        {"originationPhoneNumberId": PHONE_NUMBER_ID, "message": ANY, "metaApiVersion": ANY},
    )
    delivered = message_deliver(sent.pk)
    stubber.assert_no_pending_responses()
    assert calls == ["SendWhatsAppMessage"]
    assert (delivered.status, delivered.dry_run, delivered.provider_message_id) == (
        MessageStatus.SENT,
        False,
        "aws-ai-1",
    )


def test_approved_with_edits_in_dry_run_the_reply_is_recorded_but_never_sent(
    faq, customer, ai_queue, operator_api, whatsapp_provider, django_capture_on_commit_callbacks
):
    _, calls = whatsapp_provider
    receive(QUESTION, django_capture_on_commit_callbacks)
    [(_, args)] = queued_ai_tasks(ai_queue)
    suggestion = AISuggestion.objects.get(pk=suggest_reply(*args))
    client, _ = operator_api

    response = client.post(f"/api/ai/suggestions/{suggestion.pk}/approve/", {"text": "Sundays 10-14, see you!"},
                           content_type="application/json")  # fmt: skip

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["editedText"], body["response"]) == (
        "edited", "Sundays 10-14, see you!", "We are open on Sundays from 10:00 to 14:00.")  # fmt: skip
    delivered = message_deliver(body["sentMessageId"])
    assert delivered.dry_run is True and delivered.content == "Sundays 10-14, see you!"
    assert calls == []  # DRY_RUN: the provider is never called


def test_outside_the_window_the_gate_refuses_and_the_suggestion_is_expired(
    faq, make_contact, inbound, operator_api, whatsapp_provider
):
    _, calls = whatsapp_provider
    contact = make_contact()
    suggestion = services.suggestion_generate(inbound(contact, QUESTION, ago=timedelta(hours=25)).pk)
    client, _ = operator_api

    response = client.post(f"/api/ai/suggestions/{suggestion.pk}/approve/", {}, content_type="application/json")

    assert response.status_code == 409
    assert response.json()["code"] == "EXPIRED"
    assert SafetyRefusalCount.objects.get(code="TEMPLATE_REQUIRED").count == 1  # the gate's own verdict
    assert AISuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.EXPIRED
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists() and calls == []


def test_a_contact_who_opted_out_meanwhile_is_refused_by_the_gate_and_the_suggestion_stays_pending(
    faq, make_contact, inbound, operator_api
):
    contact = make_contact()
    suggestion = services.suggestion_generate(inbound(contact, QUESTION).pk)
    Contact.objects.filter(pk=contact.pk).update(opt_in_whatsapp=False)
    client, _ = operator_api

    response = client.post(f"/api/ai/suggestions/{suggestion.pk}/approve/", {}, content_type="application/json")

    assert response.status_code == 422 and response.json()["code"] == "OPT_IN_REQUIRED"
    assert AISuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.PENDING
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_an_opt_out_keyword_is_consent_not_a_question_and_gets_no_ai_task(
    customer, ai_queue, django_capture_on_commit_callbacks
):
    message = receive("STOP", django_capture_on_commit_callbacks)

    assert message.keyword_action == "opt_out"
    assert queued_ai_tasks(ai_queue) == []


def test_each_suggestion_and_each_decision_is_counted_by_outcome(faq, make_contact, inbound, page_user):
    from wecare.tests.log_capture import captured_logs

    contact = make_contact()
    operator = page_user("Operator")
    with captured_logs() as captured:
        approved = services.suggestion_generate(inbound(contact, QUESTION).pk)
        services.suggestion_approve(suggestion_id=approved.pk, user=operator)
        rejected = services.suggestion_generate(inbound(contact, QUESTION).pk)
        services.suggestion_reject(suggestion_id=rejected.pk, user=operator, reason="Too short")

    assert captured.metric_values("AISuggestions", Outcome="drafted") == [1, 1]
    assert captured.metric_values("AISuggestions", Outcome="approved") == [1]
    assert captured.metric_values("AISuggestions", Outcome="rejected") == [1]
