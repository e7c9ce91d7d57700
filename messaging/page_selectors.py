"""Reads for the DM pages: the conversation list and one conversation. Live messages only."""

from __future__ import annotations

from django.db.models import Count, DateTimeField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from contacts.models import Contact
from messaging.models import Direction, Message, TemplateStatus, WhatsAppTemplate

EPOCH = "1970-01-01T00:00:00Z"


def conversation_list(*, search_q: Q | None = None) -> QuerySet[Contact]:
    """Contacts with at least one live message, latest conversation first.

    Each carries ``last_at``, ``last_channel``, ``last_direction``, ``last_content``, ``last_type``
    and ``unread``: the inbound messages that arrived after the last reply (nobody has answered them).
    """
    live = Message.objects.live().filter(contact=OuterRef("pk"))
    latest = live.order_by("-created_at")
    last_reply = live.filter(direction=Direction.OUTBOUND).order_by("-created_at").values("created_at")[:1]
    unread = (
        Message.objects.live()
        .filter(contact=OuterRef("pk"), direction=Direction.INBOUND, created_at__gt=OuterRef("replied_at"))
        .values("contact")
        .annotate(n=Count("pk"))
        .values("n")
    )
    contacts = Contact.objects.active()
    if search_q is not None:
        contacts = contacts.filter(search_q)
    return (
        contacts.annotate(
            last_at=Subquery(latest.values("created_at")[:1]),
            last_channel=Subquery(latest.values("channel")[:1]),
            last_direction=Subquery(latest.values("direction")[:1]),
            last_content=Subquery(latest.values("content")[:1]),
            last_subject=Subquery(latest.values("subject")[:1]),
            last_type=Subquery(latest.values("message_type")[:1]),
            replied_at=Coalesce(Subquery(last_reply), Value(EPOCH, output_field=DateTimeField())),
        )
        .annotate(unread=Coalesce(Subquery(unread), Value(0)))
        .filter(last_at__isnull=False)
        .order_by("-last_at", "pk")
    )


def conversation_channels(contact_ids) -> dict:
    """contact id → the channels its live messages used, in a fixed order."""
    order = {"whatsapp": 0, "sms": 1, "email": 2, "voice": 3, "rcs": 4}
    channels: dict = {}
    rows = Message.objects.live().filter(contact_id__in=contact_ids).values_list("contact_id", "channel").distinct()
    for contact_id, channel in rows:
        channels.setdefault(contact_id, []).append(channel)
    return {key: sorted(value, key=lambda c: order.get(c, 9)) for key, value in channels.items()}


def conversation_messages(*, contact: Contact, limit: int = 100) -> list[Message]:
    """The latest ``limit`` live messages with this contact, oldest first (as a thread reads)."""
    rows = (
        Message.objects.live()
        .filter(contact=contact)
        .select_related("voice_call")
        .prefetch_related("media")
        .order_by("-created_at")[:limit]
    )
    return list(reversed(rows))


def approved_templates() -> QuerySet[WhatsAppTemplate]:
    return WhatsAppTemplate.objects.filter(status=TemplateStatus.APPROVED).order_by("name", "language")
