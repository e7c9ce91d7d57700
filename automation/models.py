"""AI-suggested replies: one row per suggestion (requirement 15.5), the runtime switches, and the
local knowledge base that answers when Bedrock is not configured."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.models import Contact
from messaging.models import Message

SUGGESTION_RETENTION_DAYS = 90


def _suggestion_expiry():
    return timezone.now() + timedelta(days=SUGGESTION_RETENTION_DAYS)


class SuggestionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    EDITED = "edited", "Edited and approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"


class SuggestionSource(models.TextChoices):
    BEDROCK = "bedrock", "Bedrock agent"
    KNOWLEDGE_BASE = "knowledge_base", "From the knowledge base"


class FeedbackRating(models.TextChoices):
    USEFUL = "useful", "Useful"
    NOT_USEFUL = "not_useful", "Not useful"


class AISuggestion(models.Model):
    """A drafted reply to one inbound message, waiting for (or carrying) a person's decision.

    Nothing is sent from a suggestion except through approval, which goes through the one gate.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="interaction id")
    # Messages are kept 30 days, suggestions 90: the suggestion outlives its message.
    inbound_message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_suggestions"
    )
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16)
    origination_phone_number_id = models.CharField(max_length=128, blank=True)
    query = models.TextField(blank=True)
    # [{"text", "source_id", "score"}]: the passages (Bedrock) or entries (local KB) the draft rests on.
    knowledge_context = models.JSONField(default=list, blank=True)
    response = models.TextField(blank=True)
    edited_text = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=SuggestionSource.choices)
    score = models.FloatField(null=True, blank=True)  # local KB: the best entry's BM25 score
    model = models.CharField(max_length=128, blank=True)
    tokens_used = models.PositiveIntegerField(null=True, blank=True)
    # [{"code", "detail"}]: what the approver must look at (unknown link/phone/email, too long, guardrail).
    flags = models.JSONField(default=list, blank=True)
    guardrail_traces = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    # WhatsApp: the service window of the inbound message closes here; later no free-form reply.
    reply_by = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.TextField(blank=True)
    sent_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    feedback_rating = models.CharField(max_length=16, choices=FeedbackRating.choices, blank=True)
    feedback_comment = models.TextField(blank=True)
    feedback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    feedback_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(default=_suggestion_expiry, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "AI suggestion"
        constraints = [
            # At-least-once tasks: a second delivery of one message's task must not draft twice.
            models.UniqueConstraint(
                fields=["inbound_message"],
                condition=Q(inbound_message__isnull=False),
                name="aisuggestion_one_per_message",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="aisuggestion_status_recent"),
            models.Index(fields=["contact", "status"], name="aisuggestion_contact_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} suggestion for {self.contact or 'a deleted contact'}"

    @property
    def final_text(self) -> str:
        return self.edited_text or self.response


class AIConfig(models.Model):
    """The one stored AI configuration (pk 1): the global switch and the circuit breaker's state."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    enabled = models.BooleanField("AI suggestions on", default=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "AI configuration"
        verbose_name_plural = "AI configuration"

    def __str__(self) -> str:
        return f"AI suggestions {'on' if self.enabled else 'off'}"


class AINumberSwitch(models.Model):
    """AI on or off for the messages received on one WhatsApp number (no row: on)."""

    phone_number_id = models.CharField(max_length=128, unique=True)
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phone_number_id"]
        verbose_name = "AI switch per WhatsApp number"
        verbose_name_plural = "AI switches per WhatsApp number"

    def __str__(self) -> str:
        return f"{self.phone_number_id}: AI {'on' if self.enabled else 'off'}"


class KnowledgeEntry(models.Model):
    """A question and its answer in the local knowledge base (used when Bedrock is not configured)."""

    question = models.TextField()
    answer = models.TextField()
    tags = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["question"]
        verbose_name = "knowledge-base entry"
        verbose_name_plural = "knowledge base"

    def __str__(self) -> str:
        return self.question[:80]
