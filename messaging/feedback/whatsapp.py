"""WhatsApp failure codes from status events (Meta's error codes, relayed by EUM Social) that say sending
the same again would fail again: the contact's number is suppressed, for one template category or for
everything, so the next pre-flight skips them with a reason instead of paying for the same failure.

Codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes):
- 131026 "Message undeliverable": no WhatsApp on the number, an old app, or the terms not accepted.
  Suppressed for every message, for WHATSAPP_UNDELIVERABLE_SUPPRESSION_DAYS (it may change).
- 131049 per-user marketing limit ("to maintain healthy ecosystem engagement"): MARKETING templates
  for WHATSAPP_MARKETING_LIMIT_SUPPRESSION_DAYS.
- 131050 "the user has stopped marketing messages": MARKETING templates until an Admin lifts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from contacts.models import Channel
from messaging.feedback.suppressions import suppression_add
from messaging.models import Message, SuppressionReason

MARKETING = "MARKETING"


def _rules() -> dict[str, tuple[str, str, int | None]]:
    """Meta error code → (reason, category, days or None for no expiry)."""
    reasons = SuppressionReason
    return {
        "131026": (reasons.WHATSAPP_UNDELIVERABLE, "", settings.WHATSAPP_UNDELIVERABLE_SUPPRESSION_DAYS),
        "131049": (reasons.WHATSAPP_MARKETING_LIMIT, MARKETING, settings.WHATSAPP_MARKETING_LIMIT_SUPPRESSION_DAYS),
        "131050": (reasons.WHATSAPP_MARKETING_STOPPED, MARKETING, None),
    }


def whatsapp_failure_apply(*, message: Message, code: str, title: str, at: datetime, event_id: str = "") -> bool:
    """Suppress the message's contact number if ``code`` is a permanent one; whether it was (newly)."""
    rule = _rules().get(str(code))
    phone = message.contact.phone if message.contact_id else ""
    if rule is None or not phone:
        return False
    reason, category, days = rule
    _, created = suppression_add(
        channel=Channel.WHATSAPP,
        address=phone,
        reason=reason,
        category=category,
        detail=f"{code}: {title}".strip(),
        contact=message.contact,
        provider_event_id=event_id,
        expires_at=at + timedelta(days=days) if days else None,
        now=at,
    )
    return created
