"""Moving an outbound email or SMS forward from a provider event (the rule WhatsApp statuses follow)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from messaging.inbound.statuses import STATUS_TIME_FIELDS
from messaging.models import Message, MessageStatus, status_may_advance
from wecare import metrics

logger = logging.getLogger(__name__)


def message_advance(
    message: Message, new: str, *, at: datetime, error_code: str = "", error_details: dict[str, Any] | None = None
) -> bool:
    """Move ``message`` to ``new`` only if its status (read in the database now) may advance to it.

    Forward only: a late "delivered" after "failed" changes nothing. Returns whether it moved.
    """
    time_field = STATUS_TIME_FIELDS[new]
    updates: dict[str, Any] = {"status": new, time_field: at, "updated_at": timezone.now()}
    if new == MessageStatus.FAILED:
        updates["error_code"] = error_code[:64]
        updates["error_details"] = error_details or {}
    may_advance_from = [current for current in MessageStatus.values if status_may_advance(current, new)]
    changed = Message.objects.filter(pk=message.pk, status__in=may_advance_from).update(**updates)
    if changed:
        metrics.message_status(new, channel=message.channel)
    logger.info(
        "%s status %s of message %s: %s", message.channel, new, message.pk, "applied" if changed else "not newer"
    )
    return bool(changed)
