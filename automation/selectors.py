"""Reads of AI suggestions for the Agent page, the DM conversation and the API."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from automation.models import AISuggestion, SuggestionStatus


def suggestion_list() -> QuerySet[AISuggestion]:
    """Every kept suggestion (not past its 90 days), newest first."""
    return (
        AISuggestion.objects.filter(expires_at__gt=timezone.now())
        .select_related("contact", "inbound_message", "decided_by", "sent_message")
        .order_by("-created_at")
    )


def suggestion_queue() -> QuerySet[AISuggestion]:
    """Pending suggestions that can still be approved, newest first."""
    now = timezone.now()
    return (
        suggestion_list().filter(status=SuggestionStatus.PENDING).filter(Q(reply_by__isnull=True) | Q(reply_by__gt=now))
    )


def suggestion_recent_decisions(limit: int = 20) -> list[AISuggestion]:
    return list(suggestion_list().exclude(status=SuggestionStatus.PENDING)[:limit])


def suggestion_for_contact(contact_id) -> AISuggestion | None:
    """The contact's pending suggestion for its latest message, if there is one."""
    return suggestion_queue().filter(contact_id=contact_id).first()
