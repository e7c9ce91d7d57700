"""From an inbound message to a suggestion, and the rules of its life: superseded, expired,
flagged, switched off, and the circuit breaker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from automation import services
from automation.models import AIConfig, AISuggestion, SuggestionSource, SuggestionStatus
from automation.tests import fake_bedrock as fb
from messaging.models import Direction, Message
from wecare import aws

pytestmark = pytest.mark.django_db


def test_an_inbound_question_gets_the_best_knowledge_base_answer_as_a_pending_suggestion(faq, make_contact, inbound):
    contact = make_contact()
    message = inbound(contact, "Hello! What are your opening hours on Sunday?")

    suggestion = services.suggestion_generate(message.pk)

    assert suggestion.status == SuggestionStatus.PENDING
    assert suggestion.source == SuggestionSource.KNOWLEDGE_BASE
    assert suggestion.response == "We are open on Sundays from 10:00 to 14:00."
    assert suggestion.score > 1.0
    assert suggestion.knowledge_context[0]["source_id"] == f"kb:{faq[0].pk}"
    assert suggestion.reply_by == message.created_at + timedelta(hours=24)
    assert suggestion.flags == []
    assert (suggestion.contact, suggestion.inbound_message, suggestion.query) == (contact, message, message.content)
    assert timedelta(days=89) < suggestion.expires_at - timezone.now() <= timedelta(days=90)


def test_a_question_the_knowledge_base_cannot_answer_gets_no_suggestion(faq, make_contact, inbound):
    message = inbound(make_contact(), "Is the moon made of cheese?")

    assert services.suggestion_generate(message.pk) is None
    assert not AISuggestion.objects.exists()


def test_with_ai_off_globally_or_for_the_number_nothing_is_drafted_and_the_switch_is_audited(
    faq, make_contact, inbound, page_user, ai_settings
):
    admin = page_user("Admin")
    message = inbound(make_contact(), "What are your opening hours on Sunday?")

    services.ai_switch_set(user=admin, enabled=False)
    assert services.suggestion_generate(message.pk) is None

    services.ai_switch_set(user=admin, enabled=True)
    services.ai_switch_set(user=admin, enabled=False, phone_number_id=ai_settings.WHATSAPP_PHONE_NUMBER_IDS[0])
    assert services.suggestion_generate(message.pk) is None
    assert services.ai_enabled_for(ai_settings.WHATSAPP_PHONE_NUMBER_IDS[1])

    assert list(AuditLog.objects.filter(action="automation.switch").order_by("timestamp").values_list(
        "resource_id", "details")) == [("global", {"enabled": False}), ("global", {"enabled": True}),
        (ai_settings.WHATSAPP_PHONE_NUMBER_IDS[0], {"enabled": False})]  # fmt: skip


def test_a_newer_inbound_message_supersedes_the_pending_suggestion_and_it_cannot_be_approved(
    faq, make_contact, inbound, page_user
):
    contact = make_contact()
    first = services.suggestion_generate(inbound(contact, "What are your opening hours on Sunday?").pk)
    inbound(contact, "And do you ship to Mumbai?", ago=timedelta(minutes=1))

    with pytest.raises(services.SuggestionError) as refused:
        services.suggestion_approve(suggestion_id=first.pk, user=page_user("Operator"))

    assert refused.value.code == "SUPERSEDED"
    first.refresh_from_db()
    assert first.status == SuggestionStatus.SUPERSEDED
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_drafting_for_the_newer_message_supersedes_the_older_suggestion(faq, make_contact, inbound):
    contact = make_contact()
    first = services.suggestion_generate(inbound(contact, "What are your opening hours on Sunday?").pk)
    second = services.suggestion_generate(inbound(contact, "Do you ship to Mumbai?", ago=timedelta(minutes=1)).pk)

    first.refresh_from_db()
    assert (first.status, second.status) == (SuggestionStatus.SUPERSEDED, SuggestionStatus.PENDING)


def test_a_message_overtaken_before_its_draft_started_gets_none(faq, make_contact, inbound):
    contact = make_contact()
    older = inbound(contact, "What are your opening hours on Sunday?", ago=timedelta(minutes=5))
    inbound(contact, "Do you ship to Mumbai?", ago=timedelta(minutes=1))

    assert services.suggestion_generate(older.pk) is None


def test_the_sweep_marks_superseded_and_expired_suggestions(faq, make_contact, inbound):
    contact, other = make_contact(), make_contact(name="Ravi")
    overtaken = services.suggestion_generate(inbound(contact, "What are your opening hours on Sunday?").pk)
    inbound(contact, "hello?", ago=timedelta(minutes=1))
    old = services.suggestion_generate(inbound(other, "Do you ship to Mumbai?", ago=timedelta(hours=23)).pk)

    result = services.suggestions_sweep(now=timezone.now() + timedelta(hours=2))

    assert result == {"superseded": 1, "expired": 1, "purged": 0}
    assert AISuggestion.objects.get(pk=overtaken.pk).status == SuggestionStatus.SUPERSEDED
    assert AISuggestion.objects.get(pk=old.pk).status == SuggestionStatus.EXPIRED


@pytest.mark.parametrize(
    ("draft", "codes"),
    [
        ("Call us on +91 80 4567 8901 or write to help@wecare.digital.", []),  # both in the sources
        ("Call us on +91 99999 00000.", ["UNKNOWN_PHONE"]),
        ("Write to refunds@elsewhere.example.", ["UNKNOWN_EMAIL"]),
        ("See https://bit.ly/xyz for the details.", ["UNKNOWN_LINK"]),
        ("See https://wecare.digital/refunds.", []),
        ("Order 12 items, 30 days, from 10:00 to 14:00.", []),
        ("x" * 4097, ["TOO_LONG"]),
    ],
)
def test_a_draft_with_a_link_phone_or_email_not_in_the_sources_or_too_long_is_flagged(draft, codes):
    known = ["Reach us at +91 80 4567 8901, help@wecare.digital or https://wecare.digital/refunds"]

    flags = services.draft_flags(draft, channel="whatsapp", known=known)

    assert [flag["code"] for flag in flags] == codes


def test_sms_drafts_have_the_sms_length_limit():
    assert [f["code"] for f in services.draft_flags("y" * 1601, channel="sms", known=[])] == ["TOO_LONG"]


def test_with_bedrock_configured_the_draft_comes_from_the_agent_with_passages_tokens_and_guardrail(
    fake_bedrock, make_contact, inbound
):
    contact = make_contact()
    inbound(contact, "Hi there", ago=timedelta(minutes=10))
    message = inbound(contact, "Are you open on Sunday?")
    fake_bedrock.retrieved(
        {"content": {"text": "Open Sundays 10-14."}, "location": {"type": "S3", "s3Location": {"uri": "s3://kb/h.md"}},
         "score": 0.9},
    )  # fmt: skip
    fake_bedrock.stream(
        fb.trace({"orchestrationTrace": {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": 100,
                                                                                       "outputTokens": 20}}}}}),
        fb.chunk("Yes: Sundays "),
        fb.chunk("10:00-14:00. Details: https://unknown.example.com"),
        fb.trace({"guardrailTrace": {"action": "INTERVENED", "traceId": "g1"}}),
    )  # fmt: skip

    suggestion = services.suggestion_generate(message.pk)

    assert suggestion.source == SuggestionSource.BEDROCK
    assert suggestion.response == "Yes: Sundays 10:00-14:00. Details: https://unknown.example.com"
    assert suggestion.model == "amazon.nova-pro-v1:0"
    assert suggestion.tokens_used == 120
    assert suggestion.knowledge_context == [{"text": "Open Sundays 10-14.", "source_id": "s3://kb/h.md", "score": 0.9}]
    assert [f["code"] for f in suggestion.flags] == ["UNKNOWN_LINK", "GUARDRAIL"]
    assert suggestion.guardrail_traces == [{"action": "INTERVENED", "traceId": "g1"}]
    retrieve, invoke = fake_bedrock.requests
    assert retrieve["path"] == "/knowledgebases/FZBPKGTOYE/retrieve"
    assert retrieve["body"]["retrievalQuery"]["text"].endswith("Are you open on Sunday?")
    assert "Open Sundays 10-14." in invoke["body"]["inputText"] and "Customer: Hi there" in invoke["body"]["inputText"]


@pytest.fixture
def sns_publishes():
    """Every SNS Publish the code makes, whatever the emulator answers."""
    calls: list[dict] = []
    client = aws.client("sns")

    def record(params, **kwargs):
        calls.append(params)

    client.meta.events.register("provide-client-params.sns.Publish", record, unique_id="ai-test-publish")
    yield calls
    client.meta.events.unregister("provide-client-params.sns.Publish", unique_id="ai-test-publish")


def test_repeated_bedrock_failures_open_the_breaker_which_pauses_ai_and_alerts_once(
    fake_bedrock, make_contact, inbound, sns_publishes
):
    # given: three failures in a row (AI_BREAKER_FAILURES=3), each a non-retryable error
    for n in range(3):
        fake_bedrock.error(400, "bad request", retrieve=True)
        message = inbound(make_contact(name=f"c{n}"), "Are you open on Sunday?")
        failed = services.suggestion_generate(message.pk)
        assert failed.status == SuggestionStatus.FAILED and "bad request" in failed.error

    # then: AI is paused, once alerted and audited; further messages do not call Bedrock at all
    config = AIConfig.objects.get()
    assert config.paused_until > timezone.now() + timedelta(seconds=290)
    assert not services.ai_enabled_for("")
    assert len(sns_publishes) == 1 and "paused" in sns_publishes[0]["Message"]
    assert AuditLog.objects.filter(action="automation.breaker_open").count() == 1
    calls = len(fake_bedrock.requests)
    assert services.suggestion_generate(inbound(make_contact(name="later"), "Open Sunday?").pk) is None
    assert len(fake_bedrock.requests) == calls

    # and after the pause AI comes back by itself
    assert services.ai_enabled_for("", now=config.paused_until + timedelta(seconds=1))


def test_a_success_resets_the_failure_count(fake_bedrock, make_contact, inbound):
    for text in ("one", "two"):
        fake_bedrock.error(400, retrieve=True)
        services.suggestion_generate(inbound(make_contact(name=text), "Open on Sunday?").pk)
    fake_bedrock.retrieved()
    fake_bedrock.stream(fb.chunk("Yes."))
    services.suggestion_generate(inbound(make_contact(name="ok"), "Open on Sunday?").pk)

    assert AIConfig.objects.get().consecutive_failures == 0
    fake_bedrock.error(400, retrieve=True)
    services.suggestion_generate(inbound(make_contact(name="again"), "Open on Sunday?").pk)
    assert AIConfig.objects.get().paused_until is None


def test_the_sweep_deletes_suggestions_after_their_90_days(faq, make_contact, inbound):
    kept = services.suggestion_generate(inbound(make_contact(), "What are your opening hours on Sunday?").pk)
    AISuggestion.objects.filter(pk=kept.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.suggestions_sweep(batch_size=1)["purged"] == 1
    assert not AISuggestion.objects.exists() and Message.objects.exists()


def test_reject_needs_a_reason_and_feedback_is_kept_with_who_and_when(faq, make_contact, inbound, page_user):
    operator = page_user("Operator")
    suggestion = services.suggestion_generate(inbound(make_contact(), "What are your opening hours on Sunday?").pk)

    with pytest.raises(services.SuggestionError, match="Say why"):
        services.suggestion_reject(suggestion_id=suggestion.pk, user=operator, reason="  ")
    services.suggestion_reject(suggestion_id=suggestion.pk, user=operator, reason="Hours changed this week")
    services.suggestion_feedback(suggestion_id=suggestion.pk, user=operator, rating="not_useful", comment="outdated")
    with pytest.raises(services.SuggestionError) as again:
        services.suggestion_approve(suggestion_id=suggestion.pk, user=operator)

    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.reject_reason, suggestion.decided_by) == (
        SuggestionStatus.REJECTED, "Hours changed this week", operator)  # fmt: skip
    assert (suggestion.feedback_rating, suggestion.feedback_comment, suggestion.feedback_by) == (
        "not_useful", "outdated", operator)  # fmt: skip
    assert again.value.code == "NOT_PENDING"
    with pytest.raises(services.SuggestionError, match="rating"):
        services.suggestion_feedback(suggestion_id=suggestion.pk, user=operator, rating="meh")


def test_an_admin_may_end_a_pause_early_and_that_is_audited(page_user):
    services.ai_config()
    AIConfig.objects.filter(pk=1).update(paused_until=timezone.now() + timedelta(minutes=5))
    assert not services.ai_enabled_for("")

    services.ai_resume(user=page_user("Admin"))

    assert services.ai_enabled_for("")
    assert AuditLog.objects.filter(action="automation.resume").count() == 1


def test_an_email_reply_answers_under_the_original_subject(faq, make_contact, page_user):
    contact = make_contact()
    contact.email = "asha@example.com"
    contact.opt_in_email = True
    contact.save()
    message = Message.objects.create(contact=contact, channel="email", direction=Direction.INBOUND,
                                      message_type="email", subject="Sunday hours", status="received",
                                      content="What are your opening hours on Sunday?")  # fmt: skip
    suggestion = services.suggestion_generate(message.pk)

    services.suggestion_approve(suggestion_id=suggestion.pk, user=page_user("Operator"))

    sent = AISuggestion.objects.get(pk=suggestion.pk).sent_message
    assert (sent.channel, sent.subject, sent.content) == ("email", "Re: Sunday hours", suggestion.response)
    assert suggestion.reply_by is None  # no 24-hour window on email


def test_a_redelivered_task_does_not_draft_twice(faq, make_contact, inbound):
    message = inbound(make_contact(), "What are your opening hours on Sunday?")

    first = services.suggestion_generate(message.pk)
    again = services.suggestion_generate(message.pk)

    assert again.pk == first.pk and AISuggestion.objects.count() == 1


def test_a_link_in_the_knowledge_base_answer_itself_is_not_flagged(faq, make_contact, inbound):
    from automation.models import KnowledgeEntry

    answer = "Track it at https://wecare.digital/track or call +91 80 4567 8901."
    KnowledgeEntry.objects.create(question="Where can I track my parcel?", answer=answer)

    suggestion = services.suggestion_generate(inbound(make_contact(), "Where can I track my parcel?").pk)

    assert suggestion.flags == []
