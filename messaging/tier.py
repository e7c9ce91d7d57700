"""The WhatsApp messaging tier: business-initiated conversations per phone number, rolling 24 hours.

A business-initiated conversation is a template sent to a contact outside the 24-hour customer
service window. Meta limits how many different customers one phone number may open such
conversations with in any rolling 24 hours (Tier 1: 250). We count them in DynamoDB, shared by
every worker:

- ``TierConversation`` (table tier-conversations): one item per (phone number, contact) while that
  conversation is open (24 h, TTL). A second template to the same contact inside it costs nothing.
- ``TierCounter`` (table tier-counters): one item per phone number and clock hour with the number
  of conversations opened in it (TTL 26 h). The count over the rolling window is the sum of the
  current hour and the 24 before it (a conversation leaves the count 24-25 h after it opened: never
  early). Taking a place is one atomic conditional ``ADD count 1`` on the current hour's item, with
  the condition "current hour's count < limit - the 24 past hours' sum" evaluated by DynamoDB; past
  hours no longer change, so concurrent workers never overrun the limit and never retry each other.
- An alert item per phone number (same table, key ``<phone>#alert``) holds the end of the window
  in which the 80 % alert went out; a conditional write makes it go out once per window.

`tier_reserve` (called by the safety gate right before a provider call) counts a new conversation
only while the count is under WHATSAPP_TIER_LIMIT, atomically. When the count reaches
WHATSAPP_TIER_ALERT_PERCENT (80 %) an alert goes to settings.SNS_TOPIC_ARN and the log, once per
24-hour window (the alert item). At 100 % the gate refuses with
TIER_LIMIT. A reserved conversation is not given back if the provider then fails: the count errs on
the safe side. Dry runs count too (the gate behaves the same in every send mode).

Read-only helpers for the gate and for bulk pre-flight: `tier_status`, `tier_remaining`,
`tier_conversation_open`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from wecare import aws, dynamo, metrics

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600
HOUR = 3600


@dynamo.register
class TierCounter(Model):
    class Meta:
        table_name = dynamo.table_name("tier-counters")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    key = UnicodeAttribute(hash_key=True)  # "<phone-number-id>#<epoch hour>" or "<phone-number-id>#alert"
    count = NumberAttribute(null=True)
    alerted_until = NumberAttribute(null=True)  # alert item: no other alert before this epoch second
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


def _hour_key(phone_number_id: str, hour: int) -> str:
    return f"{phone_number_id}#{hour}"


def _hour_counts(phone_number_id: str, hours: list[int]) -> dict[int, int]:
    keys = {_hour_key(phone_number_id, hour): hour for hour in hours}
    counts = dict.fromkeys(hours, 0)
    for item in TierCounter.batch_get(list(keys)):
        counts[keys[item.key]] = int(item.count or 0)
    return counts


def _past_hours(now: float) -> tuple[int, list[int]]:
    """(current hour, the 24 hours before it) as epoch hours."""
    current = int(now // HOUR)
    return current, list(range(current - 24, current))


def _conversation_key(phone_number_id: str, contact_id) -> str:
    return f"{phone_number_id}#{contact_id}"


def tier_status(phone_number_id: str, *, now: datetime | float | None = None) -> TierStatus:
    """Conversations counted for a phone number in the rolling window, and the limit."""
    current, past = _past_hours(_epoch(now))
    used = sum(_hour_counts(phone_number_id, [*past, current]).values())
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


def _count_conversation(phone_number_id: str, now: float, *, limit: int) -> tuple[int, int] | None:
    """Count one conversation in the current hour if the window stays within ``limit``.

    Returns (hour counted in, count over the window after it), or None when the tier is used up.
    """
    current, past = _past_hours(now)
    before = sum(_hour_counts(phone_number_id, past).values())  # closed hours: they no longer change
    if before >= limit:
        return None
    item = TierCounter(_hour_key(phone_number_id, current))
    try:
        item.update(
            actions=[
                TierCounter.count.add(1),
                TierCounter.expires_at.set(timedelta(seconds=WINDOW_SECONDS + 2 * HOUR)),
            ],
            condition=TierCounter.count.does_not_exist() | (TierCounter.count < limit - before),
            add_version_condition=False,
        )
    except UpdateError as exc:
        if _conflict(exc):
            return None
        raise
    return current, before + int(item.count)


def _uncount_conversation(phone_number_id: str, hour: int) -> None:
    try:
        TierCounter(_hour_key(phone_number_id, hour)).update(
            actions=[TierCounter.count.add(-1)], condition=TierCounter.count > 0, add_version_condition=False
        )
    except UpdateError as exc:
        if not _conflict(exc):
            raise


def _claim_alert(phone_number_id: str, now: float) -> bool:
    """True for exactly one caller per 24-hour window: that caller sends the alert."""
    try:
        TierCounter(f"{phone_number_id}#alert").update(
            actions=[
                TierCounter.alerted_until.set(now + WINDOW_SECONDS),
                TierCounter.expires_at.set(timedelta(seconds=WINDOW_SECONDS + 2 * HOUR)),
            ],
            condition=TierCounter.alerted_until.does_not_exist() | (TierCounter.alerted_until <= now),
            add_version_condition=False,
        )
        return True
    except UpdateError as exc:
        if _conflict(exc):
            return False
        raise


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
    limit = settings.WHATSAPP_TIER_LIMIT
    counted = _count_conversation(phone_number_id, epoch, limit=limit)
    if counted is None:
        return False
    hour, used = counted
    metrics.emit("TierUsePercent", round(100 * used / limit, 2), phone_number_id=phone_number_id)
    if not _open_conversation(phone_number_id, contact_id, epoch):
        # Another worker opened this very conversation a moment ago: it is counted once, by them.
        _uncount_conversation(phone_number_id, hour)
        return True
    if used >= alert_threshold(limit) and _claim_alert(phone_number_id, epoch):
        _publish_alert(phone_number_id, used)
    return True
