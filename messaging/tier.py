"""The WhatsApp messaging tier: business-initiated conversations per phone number, rolling 24 hours.

A business-initiated conversation is a template sent to a contact outside the 24-hour customer
service window. Meta limits how many different customers one phone number may open such
conversations with in any rolling 24 hours (Tier 1: 250). We count them in DynamoDB, shared by
every worker:

- ``TierConversation`` (table tier-conversations): one item per (phone number, contact) while that
  conversation is open (24 h, TTL). A second template to the same contact inside it costs nothing.
- ``TierCounter`` (table tier-counters): one item per phone number with the count per clock hour
  of the last 25 hours (a conversation leaves the count 24-25 h after it opened: never early),
  changed only by a conditional write on its version.

`tier_reserve` (called by the safety gate right before a provider call) counts a new conversation
only while the count is under WHATSAPP_TIER_LIMIT, atomically. When the count reaches
WHATSAPP_TIER_ALERT_PERCENT (80 %) an alert goes to settings.SNS_TOPIC_ARN and the log, once per
24-hour window (the window's end is stored with the counter). At 100 % the gate refuses with
TIER_LIMIT. A reserved conversation is not given back if the provider then fails: the count errs on
the safe side. Dry runs count too (the gate behaves the same in every send mode).

Read-only helpers for the gate and for bulk pre-flight: `tier_status`, `tier_remaining`,
`tier_conversation_open`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from wecare import aws, dynamo

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600
HOUR = 3600
MAX_RACES = 25


@dynamo.register
class TierCounter(Model):
    class Meta:
        table_name = dynamo.table_name("tier-counters")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    phone_number_id = UnicodeAttribute(hash_key=True)
    # {"<epoch hour>": conversations opened in that hour}, only the last 25 hours.
    hours = UnicodeAttribute(default="{}")
    version = NumberAttribute(default=0)
    # The 80 % alert was sent; no other until this epoch second.
    alerted_until = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


@dynamo.register
class TierConversation(Model):
    class Meta:
        table_name = dynamo.table_name("tier-conversations")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    key = UnicodeAttribute(hash_key=True)  # "<phone-number-id>#<contact id>"
    opened_at = NumberAttribute()
    # TTL deletion is lazy (up to days late): readers compare expires_at with now themselves.
    expires_at = TTLAttribute()


@dataclass(frozen=True)
class TierStatus:
    phone_number_id: str
    limit: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def alert_threshold(self) -> int:
        return alert_threshold(self.limit)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit


def alert_threshold(limit: int) -> int:
    return max(1, math.ceil(limit * settings.WHATSAPP_TIER_ALERT_PERCENT / 100))


def _epoch(now: datetime | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def _live_hours(raw: str, now: float) -> dict[int, int]:
    current = int(now // HOUR)
    hours = {int(hour): int(count) for hour, count in json.loads(raw or "{}").items()}
    # Hours current-24 .. current: an item counted at 10:59 stays until 11:00 next day (24 h + ≤1 h).
    return {hour: count for hour, count in hours.items() if hour >= current - 24 and count > 0}


def _conversation_key(phone_number_id: str, contact_id) -> str:
    return f"{phone_number_id}#{contact_id}"


def tier_status(phone_number_id: str, *, now: datetime | float | None = None) -> TierStatus:
    """Conversations counted for a phone number in the rolling window, and the limit."""
    try:
        item = TierCounter.get(phone_number_id, consistent_read=True)
        used = sum(_live_hours(item.hours, _epoch(now)).values())
    except DoesNotExist:
        used = 0
    return TierStatus(phone_number_id=phone_number_id, limit=settings.WHATSAPP_TIER_LIMIT, used=used)


def tier_remaining(phone_number_ids: list[str] | None = None, *, now: datetime | float | None = None) -> dict[str, int]:
    """Business-initiated conversations each phone number may still open now (bulk pre-flight)."""
    ids = phone_number_ids if phone_number_ids is not None else settings.WHATSAPP_PHONE_NUMBER_IDS
    return {phone: tier_status(phone, now=now).remaining for phone in ids}


def tier_conversation_open(phone_number_id: str, contact_id, *, now: datetime | float | None = None) -> bool:
    """A business-initiated conversation with this contact is open on this number (costs no tier)."""
    try:
        item = TierConversation.get(_conversation_key(phone_number_id, contact_id), consistent_read=True)
    except DoesNotExist:
        return False
    return item.expires_at.timestamp() > _epoch(now)


def _conflict(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def _counter_change(phone_number_id: str, delta: int, now: float, *, limit: int | None) -> tuple[bool, int, bool]:
    """Add ``delta`` conversations; with ``limit``, only if the count stays within it.

    Returns (changed, count after, this change crossed the alert threshold in a new window).
    """
    for _ in range(MAX_RACES):
        try:
            item = TierCounter.get(phone_number_id, consistent_read=True)
            exists = True
        except DoesNotExist:
            item = TierCounter(phone_number_id, hours="{}", version=0, alerted_until=0)
            exists = False
        hours = _live_hours(item.hours, now)
        used = sum(hours.values())
        if limit is not None and delta > 0 and used + delta > limit:
            return False, used, False
        current = int(now // HOUR)
        if delta >= 0:
            hours[current] = hours.get(current, 0) + delta
        else:  # give back from the newest hours first
            remove = -delta
            for hour in sorted(hours, reverse=True):
                take = min(remove, hours[hour])
                hours[hour] -= take
                remove -= take
                if not remove:
                    break
            hours = {hour: count for hour, count in hours.items() if count > 0}
        after = sum(hours.values())
        alerted_until = float(item.alerted_until or 0)
        alert = delta > 0 and after >= alert_threshold(settings.WHATSAPP_TIER_LIMIT) and alerted_until <= now
        if alert:
            alerted_until = now + WINDOW_SECONDS
        raw = json.dumps({str(hour): count for hour, count in sorted(hours.items())})
        ttl = timedelta(seconds=WINDOW_SECONDS + 2 * HOUR)
        try:
            if exists:
                item.update(
                    actions=[
                        TierCounter.hours.set(raw),
                        TierCounter.version.set(item.version + 1),
                        TierCounter.alerted_until.set(alerted_until),
                        TierCounter.expires_at.set(ttl),
                    ],
                    condition=TierCounter.version == item.version,
                    add_version_condition=False,
                )
            else:
                TierCounter(phone_number_id, hours=raw, version=1, alerted_until=alerted_until, expires_at=ttl).save(
                    condition=TierCounter.phone_number_id.does_not_exist(), add_version_condition=False
                )
            return True, after, alert
        except (PutError, UpdateError) as exc:
            if _conflict(exc):
                continue
            raise
    raise RuntimeError(f"tier counter {phone_number_id}: too many concurrent updates")


def _open_conversation(phone_number_id: str, contact_id, now: float) -> bool:
    """Record the conversation; False if another worker opened the same one first."""
    expires = datetime.fromtimestamp(now + WINDOW_SECONDS, tz=UTC)
    marker = TierConversation(_conversation_key(phone_number_id, contact_id), opened_at=now, expires_at=expires)
    current = datetime.fromtimestamp(now, tz=UTC)
    try:
        marker.save(
            condition=TierConversation.key.does_not_exist() | (TierConversation.expires_at <= current),
            add_version_condition=False,
        )
        return True
    except PutError as exc:
        if _conflict(exc):
            return False
        raise


def _publish_alert(phone_number_id: str, used: int) -> None:
    limit = settings.WHATSAPP_TIER_LIMIT
    text = (
        f"WhatsApp phone number {phone_number_id} has opened {used} of {limit} business-initiated "
        f"conversations allowed in 24 hours ({settings.WHATSAPP_TIER_ALERT_PERCENT}% alert). At {limit} "
        f"further business-initiated sends are refused (TIER_LIMIT). Environment: {settings.ENVIRONMENT}."
    )
    logger.warning("tier alert phone=%s used=%s limit=%s", phone_number_id, used, limit)
    try:
        aws.client("sns").publish(
            TopicArn=settings.SNS_TOPIC_ARN,
            Subject=f"WhatsApp tier at {settings.WHATSAPP_TIER_ALERT_PERCENT}% ({settings.ENVIRONMENT})"[:100],
            Message=text,
        )
    except Exception:  # the alert must never stop a send; the log above has it
        logger.exception("tier alert could not be published to %s", settings.SNS_TOPIC_ARN)


def tier_reserve(phone_number_id: str, contact_id, *, now: datetime | float | None = None) -> bool:
    """Count a business-initiated conversation with this contact, if the tier allows it.

    True: the send may go (a new conversation was counted, or one is already open). False: the
    tier is used up. Called by the safety gate only; atomic across every worker.
    """
    epoch = _epoch(now)
    if tier_conversation_open(phone_number_id, contact_id, now=epoch):
        return True
    changed, used, alert = _counter_change(phone_number_id, +1, epoch, limit=settings.WHATSAPP_TIER_LIMIT)
    if not changed:
        return False
    if not _open_conversation(phone_number_id, contact_id, epoch):
        # Another worker opened this very conversation a moment ago: it is counted once, by them.
        _counter_change(phone_number_id, -1, epoch, limit=None)
        return True
    if alert:
        _publish_alert(phone_number_id, used)
    return True
