"""AI-suggested replies: drafting, the person's decision, and the switches that govern both.

A suggestion is only ever a stored draft. It becomes a message when an Operator approves it, and
then only through ``messaging.services.message_send`` (the one gate, SEND_MODE) — called from
exactly one function here, ``_reply_send``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.services import audit_record
from automation import bedrock
from automation.knowledge import knowledge_best
from automation.models import (
    AIConfig,
    AINumberSwitch,
    AISuggestion,
    FeedbackRating,
    SuggestionSource,
    SuggestionStatus,
)
from contacts.models import Channel
from messaging.channels import sms as sms_channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.models import Direction, Message, MessageType
from messaging.safety import WINDOW, RefusalCode, SafetyRefusal
from wecare import aws, metrics

logger = logging.getLogger(__name__)

# The inbound messages a reply can be drafted for: text the customer wrote.
SUGGESTIBLE_TYPES = (MessageType.TEXT, MessageType.EMAIL)
LENGTH_LIMITS = {Channel.WHATSAPP: whatsapp_channel.TEXT_MAX_CHARS, Channel.SMS: sms_channel.BODY_MAX_CHARS}
REASON_MAX_CHARS = 1000


class SuggestionError(Exception):
    """A decision that cannot be taken; ``code`` says why (NOT_PENDING, SUPERSEDED, EXPIRED, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Switches -------------------------------------------------------------------------------------


def ai_config() -> AIConfig:
    config, _ = AIConfig.objects.get_or_create(pk=1, defaults={"enabled": settings.AI_ENABLED_DEFAULT})
    return config


def ai_enabled_for(phone_number_id: str, *, now: datetime | None = None) -> bool:
    """AI is on globally, on for this WhatsApp number, and the circuit breaker is not holding it."""
    config = ai_config()
    if not config.enabled:
        return False
    if config.paused_until and config.paused_until > (now or timezone.now()):
        return False
    return not (
        phone_number_id and AINumberSwitch.objects.filter(phone_number_id=phone_number_id, enabled=False).exists()
    )


def ai_number_switches(phone_number_ids: list[str]) -> list[dict]:
    """Each of these WhatsApp numbers with its switch (no row: on)."""
    off = set(AINumberSwitch.objects.filter(enabled=False).values_list("phone_number_id", flat=True))
    return [{"phone_number_id": number, "enabled": number not in off} for number in phone_number_ids]


def ai_switch_set(*, user, enabled: bool, phone_number_id: str = "") -> None:
    """Turn AI on or off, globally or for one WhatsApp number; audited."""
    with transaction.atomic():
        if phone_number_id:
            AINumberSwitch.objects.update_or_create(
                phone_number_id=phone_number_id, defaults={"enabled": enabled, "updated_by": user}
            )
        else:
            config = ai_config()
            config.enabled = enabled
            config.updated_by = user
            config.save(update_fields=["enabled", "updated_by", "updated_at"])
        audit_record(
            user=user,
            action="automation.switch",
            resource_type="ai_switch",
            resource_id=phone_number_id or "global",
            details={"enabled": enabled},
        )


def ai_resume(*, user) -> None:
    """End a circuit-breaker pause now (an Admin who fixed the cause need not wait); audited."""
    with transaction.atomic():
        ai_config()
        AIConfig.objects.filter(pk=1).update(paused_until=None, consecutive_failures=0)
        audit_record(user=user, action="automation.resume", resource_type="ai_switch", resource_id="global")


# --- Circuit breaker ------------------------------------------------------------------------------


def breaker_record_success() -> None:
    AIConfig.objects.filter(pk=1, consecutive_failures__gt=0).update(consecutive_failures=0)


def breaker_record_failure(*, error: str, now: datetime | None = None) -> bool:
    """Count a failed suggestion; at AI_BREAKER_FAILURES in a row pause AI. True when this call
    opened the breaker (then, and only then, it logs and alerts)."""
    now = now or timezone.now()
    ai_config()
    AIConfig.objects.filter(pk=1).update(consecutive_failures=F("consecutive_failures") + 1)
    until = now + timedelta(seconds=settings.AI_BREAKER_PAUSE_SECONDS)
    # A conditional update: of several workers failing at once, exactly one opens the breaker.
    opened = AIConfig.objects.filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now),
        pk=1,
        consecutive_failures__gte=settings.AI_BREAKER_FAILURES,
    ).update(paused_until=until, consecutive_failures=0)
    if opened:
        logger.error(
            "AI paused until %s after %d failed suggestions in a row; last error: %s",
            until.isoformat(),
            settings.AI_BREAKER_FAILURES,
            error[:300],
        )
        audit_record(
            user=None,
            action="automation.breaker_open",
            resource_type="ai_switch",
            resource_id="global",
            details={"paused_until": until.isoformat(), "error": error[:300]},
        )
        _alert(
            subject="WECARE.DIGITAL: AI suggestions paused",
            text=(
                f"AI suggestions failed {settings.AI_BREAKER_FAILURES} times in a row and are paused until "
                f"{until:%Y-%m-%d %H:%M} UTC. Inbound messages are stored as usual. Last error: {error[:300]}"
            ),
        )
    return bool(opened)


def _alert(*, subject: str, text: str) -> None:
    try:
        aws.client("sns").publish(TopicArn=settings.SNS_TOPIC_ARN, Subject=subject[:100], Message=text)
    except Exception as exc:  # an alert that cannot go out is logged; it must not fail the worker
        logger.warning("AI alert not published: %s", exc)


# --- From inbound to a suggestion -----------------------------------------------------------------


def ai_suggestion_enqueue(message_id, phone_number_id: str) -> None:
    try:
        if not ai_enabled_for(phone_number_id):
            return
        from automation.tasks import suggest_reply  # the task module imports this one

        suggest_reply.apply_async(args=[str(message_id)], queue=settings.QUEUE_AI)
    except Exception:  # AI must never fail or hold up the inbound message
        logger.exception("AI suggestion for message %s not queued", message_id)


def ai_on_inbound(message: Message) -> None:
    """The inbound hook: once the message is committed, queue a suggestion on the AI queue.

    Called inside the inbound transaction; it only registers a callback, so storing the message
    never waits for AI, and no AI trouble can roll it back.
    """
    if (
        message.direction != Direction.INBOUND
        or message.message_type not in SUGGESTIBLE_TYPES
        or message.keyword_action  # STOP / START: consent, not a question
    ):
        return
    transaction.on_commit(partial(ai_suggestion_enqueue, message.pk, message.origination_phone_number_id))


def _conversation(message: Message) -> list[str]:
    rows = (
        Message.objects.live()
        .filter(contact_id=message.contact_id, created_at__lt=message.created_at)
        .exclude(content="")
        .order_by("-created_at")
        .values_list("direction", "content")[: settings.AI_CONTEXT_MESSAGES]
    )
    return [
        f"{'Customer' if direction == Direction.INBOUND else 'Us'}: {content[:1000]}"
        for direction, content in reversed(rows)
    ]


def _newer_inbound(*, contact_id, after: datetime) -> bool:
    return Message.objects.filter(contact_id=contact_id, direction=Direction.INBOUND, created_at__gt=after).exists()


def _reply_by(message: Message) -> datetime | None:
    return message.created_at + WINDOW if message.channel == Channel.WHATSAPP else None


@dataclass
class Draft:
    text: str
    source: str
    context: list[dict]
    model: str = ""
    score: float | None = None
    tokens_used: int | None = None
    guardrail_traces: list | None = None


def _draft_bedrock(message: Message, conversation: list[str]) -> Draft:
    query = "\n".join([*conversation[-2:], message.content])
    passages = bedrock.retrieve(query)
    answer = bedrock.invoke_agent(
        contact_id=message.contact_id,
        text=bedrock.agent_input(message=message.content, conversation=conversation, passages=passages),
    )
    return Draft(
        text=answer.text,
        source=SuggestionSource.BEDROCK,
        context=[p.as_dict() for p in passages],
        model=settings.BEDROCK_MODEL_ID,
        tokens_used=answer.tokens_used,
        guardrail_traces=answer.guardrail_traces,
    )


def _draft_local(message: Message) -> Draft | None:
    hit = knowledge_best(message.content)
    if hit is None:
        return None
    return Draft(
        text=hit.answer,
        source=SuggestionSource.KNOWLEDGE_BASE,
        # The entry is the source: its answer's links and numbers are the Admins' own, not invented.
        context=[{"text": f"{hit.question}\n{hit.answer}", "source_id": f"kb:{hit.entry_id}", "score": hit.score}],
        model="bm25 (local knowledge base)",
        score=hit.score,
    )


def _create_once(**fields) -> AISuggestion:
    """Store the suggestion, or return the one another delivery of the same task stored meanwhile."""
    try:
        with transaction.atomic():
            return AISuggestion.objects.create(**fields)
    except IntegrityError:
        return AISuggestion.objects.get(inbound_message=fields["inbound_message"])


def suggestion_generate(message_id, *, now: datetime | None = None) -> AISuggestion | None:
    """Draft a reply to one inbound message (the AI task). None when there is nothing to draft.

    Older pending suggestions of the contact are superseded by this newer message. A Bedrock
    failure is stored as a failed suggestion and counted by the circuit breaker.
    """
    now = now or timezone.now()
    message = Message.objects.select_related("contact").filter(pk=message_id).first()
    if message is None or not message.content.strip() or message.contact_id is None:
        return None
    existing = AISuggestion.objects.filter(inbound_message=message).first()
    if existing is not None:
        return existing  # a redelivered task: drafted already
    suggestion_supersede_older(contact_id=message.contact_id, before=message.created_at)
    if _newer_inbound(contact_id=message.contact_id, after=message.created_at):
        return None  # the newer message gets its own suggestion
    if not ai_enabled_for(message.origination_phone_number_id, now=now):
        return None
    conversation = _conversation(message)
    base = {
        "inbound_message": message,
        "contact_id": message.contact_id,
        "channel": message.channel,
        "origination_phone_number_id": message.origination_phone_number_id,
        "query": message.content,
        "reply_by": _reply_by(message),
    }
    if bedrock.bedrock_configured():
        try:
            draft = _draft_bedrock(message, conversation)
        except bedrock.BedrockError as exc:
            suggestion = _create_once(
                **base,
                source=SuggestionSource.BEDROCK,
                model=settings.BEDROCK_MODEL_ID,
                status=SuggestionStatus.FAILED,
                error=str(exc)[:2000],
            )
            breaker_record_failure(error=str(exc), now=now)
            metrics.emit("AISuggestions", outcome=SuggestionStatus.FAILED)
            return suggestion
        breaker_record_success()
        if not draft.text:
            return None
    else:
        draft = _draft_local(message)
        if draft is None:
            return None
    flags = draft_flags(
        draft.text,
        channel=message.channel,
        known=[p["text"] for p in draft.context] + conversation + [message.content],
    )
    if draft.guardrail_traces:
        flags.append({"code": "GUARDRAIL", "detail": "The Bedrock guardrail intervened in this draft."})
    suggestion = _create_once(
        **base,
        knowledge_context=draft.context,
        response=draft.text,
        source=draft.source,
        score=draft.score,
        model=draft.model,
        tokens_used=draft.tokens_used,
        flags=flags,
        guardrail_traces=draft.guardrail_traces or [],
    )
    logger.info("AI suggestion %s drafted (%s) for message %s", suggestion.pk, draft.source, message.pk)
    metrics.emit("AISuggestions", outcome="drafted")
    return suggestion


# --- Platform checks on a draft -------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_LINK = re.compile(
    r"(?:https?://|www\.)[^\s<>\"'()\[\]]+"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|in|co|digital|info|biz|app|me|ly|gl)\b(?:/[^\s<>\"'()]*)?",
    re.IGNORECASE,
)
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def _norm_link(link: str) -> str:
    link = re.sub(r"^(?:https?://)?(?:www\.)?", "", link.lower())
    return link.rstrip(".,;:!?/")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def draft_flags(text: str, *, channel: str, known: list[str]) -> list[dict]:
    """What an approver must check: a link, phone number or email address that appears in neither
    the knowledge passages nor the conversation, and a draft over the channel's length limit."""
    flags: list[dict] = []
    known_text = "\n".join(known)
    known_lower = known_text.lower()
    known_emails = {e.lower() for e in _EMAIL.findall(known_text)}
    known_links = {_norm_link(link) for link in _LINK.findall(_EMAIL.sub(" ", known_text))}
    known_phones = {_digits(p) for p in _PHONE.findall(known_text)}

    for email in dict.fromkeys(_EMAIL.findall(text)):
        if email.lower() not in known_emails and email.lower() not in known_lower:
            flags.append({"code": "UNKNOWN_EMAIL", "detail": f"The email address {email} is not in the sources."})
    for link in dict.fromkeys(_LINK.findall(_EMAIL.sub(" ", text))):
        norm = _norm_link(link)
        if not any(norm == k or k.startswith(norm) or norm.startswith(k) for k in known_links if k):
            flags.append({"code": "UNKNOWN_LINK", "detail": f"The link {link} is not in the sources."})
    for phone in dict.fromkeys(_PHONE.findall(text)):
        digits = _digits(phone)
        if len(digits) < 7:
            continue  # an amount, a date, an order number fragment
        if not any(digits.endswith(k[-10:]) or k.endswith(digits[-10:]) for k in known_phones if len(k) >= 7):
            flags.append(
                {"code": "UNKNOWN_PHONE", "detail": f"The phone number {phone.strip()} is not in the sources."}
            )
    limit = LENGTH_LIMITS.get(channel)
    if limit and len(text) > limit:
        flags.append({"code": "TOO_LONG", "detail": f"{len(text)} characters: {channel} allows {limit}."})
    return flags


# --- Decisions ------------------------------------------------------------------------------------


def _superseded(suggestion: AISuggestion) -> bool:
    """A newer inbound message from the contact arrived after the one this suggestion answers."""
    inbound_at = suggestion.inbound_message.created_at if suggestion.inbound_message else suggestion.created_at
    return bool(suggestion.contact_id) and _newer_inbound(contact_id=suggestion.contact_id, after=inbound_at)


def _locked_pending(suggestion_id) -> AISuggestion:
    suggestion = (
        AISuggestion.objects.select_for_update(of=("self",)).select_related("inbound_message").filter(pk=suggestion_id)
    )
    suggestion = suggestion.first()
    if suggestion is None:
        raise SuggestionError("NOT_FOUND", "No such suggestion.")
    if suggestion.status != SuggestionStatus.PENDING:
        raise SuggestionError("NOT_PENDING", f"This suggestion is {suggestion.get_status_display().lower()} already.")
    return suggestion


def _reply_send(*, suggestion: AISuggestion, text: str, user) -> Message:
    """The one place a suggestion becomes a message: message_send, so the one gate and SEND_MODE."""
    from messaging.services import message_send, send_request_build  # the send path imports much of messaging

    subject = ""
    if suggestion.channel == Channel.EMAIL:
        original = suggestion.inbound_message.subject if suggestion.inbound_message else ""
        subject = f"Re: {original}"[:998] if original else "Re: your message"
    request = send_request_build(
        contact_id=suggestion.contact_id,
        channel=suggestion.channel,
        text=text,
        subject=subject,
        origination_phone_number_id=suggestion.origination_phone_number_id
        if suggestion.channel == Channel.WHATSAPP
        else "",
    )
    return message_send(request, requested_by=user)


def suggestion_approve(*, suggestion_id, user, text: str | None = None, now: datetime | None = None) -> AISuggestion:
    """Approve as drafted, or with the approver's edited ``text``, and send through the gate.

    Superseded (a newer inbound message) is checked here; expired is the gate's own verdict: when
    it refuses a free-form reply because the 24-hour window closed, the suggestion is expired.
    Raises SuggestionError (NOT_PENDING, SUPERSEDED, EXPIRED, EMPTY) or SafetyRefusal (any other
    refusal: the suggestion stays pending, nothing is sent).
    """
    now = now or timezone.now()
    refusal: SafetyRefusal | None = None
    outcome = ""
    with transaction.atomic():
        suggestion = _locked_pending(suggestion_id)
        edited = text is not None and text.strip() != suggestion.response.strip()
        final = text.strip() if edited else suggestion.response
        if not final:
            raise SuggestionError("EMPTY", "The reply is empty.")
        if _superseded(suggestion):
            outcome = SuggestionStatus.SUPERSEDED
        else:
            try:
                message = _reply_send(suggestion=suggestion, text=final, user=user)
            except SafetyRefusal as exc:
                refusal = exc  # the gate's own record of the refusal is kept (not rolled back)
                if exc.code == RefusalCode.TEMPLATE_REQUIRED:
                    outcome = SuggestionStatus.EXPIRED
            else:
                suggestion.status = SuggestionStatus.EDITED if edited else SuggestionStatus.APPROVED
                suggestion.edited_text = final if edited else ""
                suggestion.sent_message = message
                suggestion.decided_by = user
                suggestion.decided_at = now
                suggestion.save(update_fields=["status", "edited_text", "sent_message", "decided_by", "decided_at"])
                audit_record(
                    user=user,
                    action="automation.approve",
                    resource_type="ai_suggestion",
                    resource_id=suggestion.pk,
                    details={"edited": edited, "message": str(message.pk), "dry_run": message.dry_run},
                )
        if outcome:
            suggestion.status = outcome
            suggestion.save(update_fields=["status"])
    if outcome or refusal is None:
        metrics.emit("AISuggestions", outcome=outcome or suggestion.status)
    if outcome == SuggestionStatus.SUPERSEDED:
        raise SuggestionError("SUPERSEDED", "A newer message arrived from the customer: this suggestion is superseded.")
    if outcome == SuggestionStatus.EXPIRED:
        raise SuggestionError("EXPIRED", "The 24-hour window closed: a free-form reply is no longer possible.")
    if refusal is not None:
        raise refusal
    return suggestion


def suggestion_reject(*, suggestion_id, user, reason: str, now: datetime | None = None) -> AISuggestion:
    reason = (reason or "").strip()
    if not reason:
        raise SuggestionError("REASON_REQUIRED", "Say why the suggestion is rejected.")
    with transaction.atomic():
        suggestion = _locked_pending(suggestion_id)
        suggestion.status = SuggestionStatus.REJECTED
        suggestion.reject_reason = reason[:REASON_MAX_CHARS]
        suggestion.decided_by = user
        suggestion.decided_at = now or timezone.now()
        suggestion.save(update_fields=["status", "reject_reason", "decided_by", "decided_at"])
        audit_record(
            user=user, action="automation.reject", resource_type="ai_suggestion", resource_id=suggestion.pk, details={}
        )
    metrics.emit("AISuggestions", outcome=SuggestionStatus.REJECTED)
    return suggestion


def suggestion_feedback(
    *, suggestion_id, user, rating: str, comment: str = "", now: datetime | None = None
) -> AISuggestion:
    """A rating (useful / not useful) and an optional comment, on any suggestion, at any time."""
    if rating not in FeedbackRating.values:
        raise SuggestionError("RATING_INVALID", f"The rating is one of {', '.join(FeedbackRating.values)}.")
    with transaction.atomic():
        suggestion = AISuggestion.objects.select_for_update().filter(pk=suggestion_id).first()
        if suggestion is None:
            raise SuggestionError("NOT_FOUND", "No such suggestion.")
        suggestion.feedback_rating = rating
        suggestion.feedback_comment = (comment or "").strip()[:REASON_MAX_CHARS]
        suggestion.feedback_by = user
        suggestion.feedback_at = now or timezone.now()
        suggestion.save(update_fields=["feedback_rating", "feedback_comment", "feedback_by", "feedback_at"])
        audit_record(
            user=user,
            action="automation.feedback",
            resource_type="ai_suggestion",
            resource_id=suggestion.pk,
            details={"rating": rating},
        )
    return suggestion


def suggestion_supersede_older(*, contact_id, before: datetime) -> int:
    """Pending suggestions for messages of this contact older than ``before`` are superseded."""
    return AISuggestion.objects.filter(
        contact_id=contact_id, status=SuggestionStatus.PENDING, inbound_message__created_at__lt=before
    ).update(status=SuggestionStatus.SUPERSEDED)


def suggestions_sweep(*, now: datetime | None = None, batch_size: int = 1000) -> dict[str, int]:
    """Mark pending suggestions superseded (a newer inbound message) or expired (window closed),
    and delete those past their 90 days of retention."""
    now = now or timezone.now()
    newer = Message.objects.filter(
        contact_id=OuterRef("contact_id"),
        direction=Direction.INBOUND,
        created_at__gt=OuterRef("inbound_message__created_at"),
    )
    pending = AISuggestion.objects.filter(status=SuggestionStatus.PENDING)
    superseded = pending.filter(Exists(newer)).update(status=SuggestionStatus.SUPERSEDED)
    expired = pending.filter(reply_by__lte=now).update(status=SuggestionStatus.EXPIRED)
    purged = 0
    while ids := list(AISuggestion.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch_size]):
        purged += AISuggestion.objects.filter(pk__in=ids).delete()[0]
    return {"superseded": superseded, "expired": expired, "purged": purged}
