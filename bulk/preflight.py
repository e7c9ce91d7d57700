"""Pre-flight: before anything is queued, per recipient whether it would send or why not.

Every candidate goes through the outbound safety gate's non-mutating evaluation (the same rules
a single send meets). The WhatsApp tier is judged for the job as a whole: the business-initiated
conversations its sendable recipients would open, per origination number, against what is left of
that number's tier. A job that would exceed it is rejected before anything is sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from bulk import pricing, sending
from bulk.models import BulkJob, BulkRecipient, RecipientStatus
from bulk.recipients import Candidate
from contacts.models import Channel

TIER_LIMIT = "TIER_LIMIT"
# Gate codes about the message or the sender, not the recipient: one of these means the request is wrong.
MESSAGE_LEVEL_CODES = ("CONTENT_INVALID", "TEMPLATE_INVALID", "PHONE_NOT_ALLOWED")


@dataclass
class Preflight:
    recipients: list[BulkRecipient] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def will_send(self) -> int:
        return self.summary["willSend"]

    @property
    def tier_exceeded(self) -> bool:
        return bool(self.summary.get("tier", {}).get("exceeded"))


def confirmation_threshold() -> int:
    return settings.BULK_CONFIRMATION_THRESHOLD


def preflight_run(*, job: BulkJob, candidates: list[Candidate], duplicates: int = 0) -> Preflight:
    """Evaluate every candidate; build unsaved BulkRecipient rows and the summary. Nothing is sent.

    Raises BulkInputError if the gate refuses the message itself (bad template, content, number).
    """
    from bulk.errors import BulkInputError

    context = sending.PreflightContext(job)
    rows: list[BulkRecipient] = []
    reasons: Counter[str] = Counter()
    sequence = 0
    for candidate in candidates:
        row = BulkRecipient(job=job, contact=candidate.contact, address=candidate.address[:320])
        if job.channel != Channel.EMAIL:
            phone = candidate.contact.phone if candidate.contact is not None else candidate.address
            row.country = pricing.country_for_phone(phone or "")
        if candidate.error_code:
            decision = sending.Decision(False, candidate.error_code, candidate.error_details)
        else:
            number = sending.phone_number_for(job, candidate.contact)
            decision = sending.gate_preflight(
                job=job, contact=candidate.contact, phone_number_id=number, context=context
            )
            if decision.code in MESSAGE_LEVEL_CODES:
                raise BulkInputError(decision.reason, code=decision.code)
            row.origination_phone_number_id = number
        # Tier is judged for the whole job below, so a recipient the tier alone refuses still counts
        # as sendable here (and the job is rejected if the conversations it opens do not fit).
        if decision.allowed or decision.code == TIER_LIMIT:
            row.sequence = sequence
            row.status = RecipientStatus.PENDING
            row.opens_conversation = decision.opens_conversation
            sequence += 1
        else:
            row.status = RecipientStatus.SKIPPED
            row.error_code = decision.code
            row.error_details = decision.reason
            row.origination_phone_number_id = ""
            reasons[decision.code] += 1
        rows.append(row)

    opens = _conversations_to_open(rows, context)
    summary = {
        "totalRecipients": len(rows),
        "willSend": sequence,
        "willNotSend": len(rows) - sequence,
        "byReason": dict(sorted(reasons.items())),
        "duplicatesRemoved": duplicates,
        "confirmationThreshold": confirmation_threshold(),
        # More than the threshold named (not only sendable): the operator confirms what they asked for.
        "confirmationRequired": len(rows) > confirmation_threshold(),
    }
    # What three recipients would read, placeholders filled: shown before anyone confirms.
    summary["samples"] = sending.preview_samples(job, rows)
    if job.channel == Channel.WHATSAPP:
        used = {row.origination_phone_number_id for row in rows if row.sequence is not None}
        summary["tier"] = tier_summary(sorted(used | set(opens)), opens)
        summary["cost"] = pricing.preflight_estimate(job, rows)
    return Preflight(rows, summary)


def _conversations_to_open(rows: list[BulkRecipient], context) -> Counter[str]:
    """Business-initiated sends per number; those with a conversation already open cost nothing.

    Looking that up is one DynamoDB read per recipient, so it is done only for a number whose
    business-initiated sends would not fit what is left of its tier anyway.
    """
    opens: Counter[str] = Counter(
        row.origination_phone_number_id for row in rows if row.sequence is not None and row.opens_conversation
    )
    for number, count in list(opens.items()):
        if count <= context.tier[number].remaining:
            continue
        for row in rows:
            if (
                row.sequence is not None
                and row.opens_conversation
                and row.origination_phone_number_id == number
                and sending.conversation_already_open(number, row.contact_id)
            ):
                row.opens_conversation = False
                opens[number] -= 1
    return opens


def tier_summary(numbers: list[str], opens: Counter) -> dict:
    """Conversations the job would open per number against the remaining tier of each number."""
    per_number = {}
    exceeded = False
    for number in numbers:
        remaining = sending.tier_remaining(number)
        would_open = opens.get(number, 0)
        over = would_open > remaining
        exceeded = exceeded or over
        per_number[number] = {
            "conversationsToOpen": would_open,
            "remaining": remaining,
            "limit": sending.tier_limit(),
            "exceeded": over,
        }
    return {
        "conversationsToOpen": sum(opens.values()),
        "remaining": sum(item["remaining"] for item in per_number.values()),
        "byPhoneNumber": per_number,
        "exceeded": exceeded,
    }


def tier_message(tier: dict) -> str:
    parts = [
        f"{number}: {item['conversationsToOpen']} to open, {item['remaining']} left"
        for number, item in tier["byPhoneNumber"].items()
        if item["exceeded"]
    ]
    return (
        "This job would open more business-initiated WhatsApp conversations than the tier has left in "
        f"the last 24 hours ({'; '.join(parts)}). Send to fewer contacts, or wait for the tier to free up."
    )
