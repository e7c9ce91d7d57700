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
24-hour window (the alert item). At 100 % the gate refuses with TIER_LIMIT. A place reserved for a
send whose provider call then fails permanently is given back (`tier_give_back`); after a crash it
is not (the count errs on the safe side). Dry runs count too (the gate behaves the same in every
send mode).

Batched, for bulk chunks: `tier_reserve_many` reads the open conversations of many contacts in one
BatchGetItem and takes the places of the new ones in one conditional ``ADD count <n>`` (as many as
the tier still has); `TierReservation.settle` records the conversations actually opened (one
BatchWriteItem) and gives back in one update the places not used (refused, failed permanently).

Read-only helpers for the gate and for bulk pre-flight: `tier_status`, `tier_remaining`,
`tier_conversation_open`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from wecare import aws, dynamo, metrics

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600
HOUR = 3600
MAX_RESERVE_ROUNDS = 5


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


def _uncount_conversation(phone_number_id: str, hour: int, *, places: int = 1) -> None:
    try:
        TierCounter(_hour_key(phone_number_id, hour)).update(
            actions=[TierCounter.count.add(-places)],
            condition=TierCounter.count >= places,
            add_version_condition=False,
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


def tier_give_back(phone_number_id: str, contact_id, *, opened_at: datetime | float) -> bool:
    """Undo a `tier_reserve` made at ``opened_at`` whose send then failed permanently.

    Only the conversation that very reservation opened is removed (a conditional delete on its
    opening time) and its hour uncounted; a conversation opened by an earlier send stays. True if
    a place was given back.
    """
    epoch = _epoch(opened_at)
    marker = TierConversation(_conversation_key(phone_number_id, contact_id))
    try:
        marker.delete(condition=TierConversation.opened_at == epoch, add_version_condition=False)
    except DeleteError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    _uncount_conversation(phone_number_id, int(epoch // HOUR), places=1)
    return True


def tier_conversations_open(phone_number_id: str, contact_ids, *, now: datetime | float | None = None) -> set[str]:
    """Of these contacts, those with a conversation open on this number (str ids): one batch read."""
    epoch = _epoch(now)
    keys = {_conversation_key(phone_number_id, contact_id): str(contact_id).lower() for contact_id in contact_ids}
    if not keys:
        return set()
    return {
        keys[item.key]
        for item in TierConversation.batch_get(list(keys), consistent_read=True)
        if item.expires_at.timestamp() > epoch
    }


@dataclass
class TierReservation:
    """Tier places of one phone number taken at once for many sends (a bulk chunk)."""

    phone_number_id: str
    hour: int  # the epoch hour the places were counted in
    opened_at: float
    already_open: set[str]  # contacts with an open conversation: no place needed
    granted: set[str]  # contacts a place was taken for
    spent: set[str] = field(default_factory=set)

    def allows(self, contact_id) -> bool:
        key = str(contact_id).lower()
        return key in self.already_open or key in self.granted

    def settle(self, *, opened: list, released: list) -> None:
        """The sends of ``opened`` went out: record their conversations (one batch write). The places
        of ``released`` (refused after all, failed permanently) go back in one update."""
        new = [c for c in opened if str(c).lower() in self.granted and str(c).lower() not in self.spent]
        if new:
            expires = datetime.fromtimestamp(self.opened_at + WINDOW_SECONDS, tz=UTC)
            with TierConversation.batch_write() as batch:
                for contact_id in new:
                    key = _conversation_key(self.phone_number_id, contact_id)
                    batch.save(TierConversation(key, opened_at=self.opened_at, expires_at=expires))
            self.spent.update(str(c).lower() for c in new)
        back = {str(c).lower() for c in released} & (self.granted - self.spent)
        if back:
            self.granted -= back
            _uncount_conversation(self.phone_number_id, self.hour, places=len(back))

    def release_unused(self) -> None:
        """Give back every place not spent (the end of a chunk, or a chunk that stops early)."""
        self.settle(opened=[], released=list(self.granted - self.spent))


def tier_reserve_many(phone_number_id: str, contact_ids, *, now: datetime | float | None = None) -> TierReservation:
    """Take the tier places the new conversations of ``contact_ids`` need, as many as the tier has
    (in the order given); contacts with an open conversation need none. One batch read and one
    conditional update (a second if another worker took places meanwhile)."""
    epoch = _epoch(now)
    ids = [str(contact_id).lower() for contact_id in contact_ids]
    already_open = tier_conversations_open(phone_number_id, ids, now=epoch)
    new = list(dict.fromkeys(c for c in ids if c not in already_open))
    limit = settings.WHATSAPP_TIER_LIMIT
    granted: list[str] = []
    current, past = _past_hours(epoch)
    if new:
        before = sum(_hour_counts(phone_number_id, past).values())
        wanted = len(new)
        for _ in range(MAX_RESERVE_ROUNDS):
            places = min(wanted, limit - before - _hour_counts(phone_number_id, [current])[current])
            if places <= 0:
                break
            item = TierCounter(_hour_key(phone_number_id, current))
            try:
                item.update(
                    actions=[
                        TierCounter.count.add(places),
                        TierCounter.expires_at.set(timedelta(seconds=WINDOW_SECONDS + 2 * HOUR)),
                    ],
                    condition=TierCounter.count.does_not_exist() | (TierCounter.count <= limit - before - places),
                    add_version_condition=False,
                )
            except UpdateError as exc:
                if _conflict(exc):
                    continue  # another worker took places meanwhile: count again
                raise
            granted = new[:places]
            used = before + int(item.count)
            if used >= alert_threshold(limit) and _claim_alert(phone_number_id, epoch):
                _publish_alert(phone_number_id, used)
            break
    return TierReservation(
        phone_number_id=phone_number_id,
        hour=current,
        opened_at=epoch,
        already_open=already_open,
        granted=set(granted),
    )
