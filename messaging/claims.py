"""De-duplication claims for inbound WhatsApp messages, in DynamoDB (pynamodb).

SNS delivers at least once and Meta may resend a message, so one wamid can reach several workers at
the same moment. Before a worker stores a message (and downloads its media, applies a keyword…) it
takes the message's claim with a conditional put:

- the put succeeds if there is no claim, or the claim's lease has run out (its worker died or gave
  up): exactly one worker holds a live claim at a time;
- the holder stores the message, then marks the claim done (lease extended to the 24 h TTL), or
  releases it (delete) when it fails, so a retry or a DLQ replay can take it at once;
- a worker that finds a live claim held by another does not process the copy: a done claim means
  the message is stored (a duplicate), a processing one means "try again later" — never "skip", or
  a worker dying mid-way would lose the message.

DynamoDB deletes claims after their TTL (24 h); from then on the unique constraint on
Message.whatsapp_message_id still refuses a second row, so a late replay stores nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.models import Model

from wecare.dynamo import endpoint, region, register, table_name
from wecare.errors import RetryLater

logger = logging.getLogger(__name__)

CLAIM_TTL = timedelta(hours=24)
PROCESSING = "processing"
DONE = "done"


@register
class InboundClaim(Model):
    """One claim per WhatsApp message id (wamid)."""

    class Meta:
        table_name = table_name("inbound-claims")
        host = endpoint()
        region = region()
        ttl_attribute = "expires_at"

    whatsapp_message_id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    state = UnicodeAttribute()
    # Epoch seconds until which the owner holds the claim; a done claim holds it until its TTL.
    lease_until = NumberAttribute()
    expires_at = TTLAttribute()


class ClaimBusy(RetryLater):  # noqa: N818 - a state, not a failure
    """Another worker holds a live claim on this message: process this copy later."""

    code = "CLAIM_BUSY"

    def __init__(self, whatsapp_message_id: str, lease_until: int):
        super().__init__(f"{whatsapp_message_id} is being processed by another worker until {lease_until}")
        self.whatsapp_message_id = whatsapp_message_id
        self.lease_until = lease_until


@dataclass
class Claim:
    whatsapp_message_id: str
    owner: str


def _now() -> datetime:
    return datetime.now(UTC)


def _is_condition_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def claim_take(whatsapp_message_id: str, *, lease_seconds: int) -> Claim | None:
    """Take the claim of one message. Returns the Claim, or None when the message is already stored.

    Raises ClaimBusy when another worker holds a live claim, and pynamodb's errors when DynamoDB
    cannot be reached (the caller retries).
    """
    now = _now()
    owner = uuid.uuid4().hex
    item = InboundClaim(
        whatsapp_message_id,
        owner=owner,
        state=PROCESSING,
        lease_until=int((now + timedelta(seconds=lease_seconds)).timestamp()),
        expires_at=now + CLAIM_TTL,
    )
    try:
        item.save(
            condition=InboundClaim.whatsapp_message_id.does_not_exist()
            | (InboundClaim.lease_until < int(now.timestamp()))
        )
    except PutError as exc:
        if not _is_condition_failure(exc):
            raise
        try:
            current = InboundClaim.get(whatsapp_message_id, consistent_read=True)
        except InboundClaim.DoesNotExist:
            # Released between our put and our read: the caller retries and will likely win.
            raise ClaimBusy(whatsapp_message_id, int(now.timestamp())) from None
        if current.state == DONE:
            return None
        raise ClaimBusy(whatsapp_message_id, int(current.lease_until)) from None
    return Claim(whatsapp_message_id=whatsapp_message_id, owner=owner)


def claim_done(claim: Claim) -> None:
    """Mark the claim done: copies arriving in the next 24 h are recognised without touching the DB."""
    expires = _now() + CLAIM_TTL
    try:
        InboundClaim(claim.whatsapp_message_id).update(
            actions=[
                InboundClaim.state.set(DONE),
                InboundClaim.lease_until.set(int(expires.timestamp())),
                InboundClaim.expires_at.set(expires),
            ],
            condition=InboundClaim.owner == claim.owner,
        )
    except UpdateError as exc:
        if not _is_condition_failure(exc):
            raise
        # Our lease ran out and another worker took over: it finds the message stored and marks done.
        logger.warning("claim of %s was taken over before it was marked done", claim.whatsapp_message_id)


def claim_release(claim: Claim) -> None:
    """Give the claim up after a failure, so the next attempt need not wait for the lease to run out."""
    try:
        InboundClaim(claim.whatsapp_message_id).delete(condition=InboundClaim.owner == claim.owner)
    except DeleteError as exc:
        if not _is_condition_failure(exc):
            logger.warning("could not release the claim of %s: %s", claim.whatsapp_message_id, exc)
