"""Who is in a segment, and what the safety gate would do with them.

The preview's skip breakdown classifies every member in SQL with the gate's contact rules, in the
gate's order (messaging/safety.py): 3 OPT_IN_REQUIRED, 4 ADDRESS_MISSING, 6 TEMPLATE_REQUIRED
(WhatsApp free-form outside the 24-hour window), 9 *_SUPPRESSED (the address suppressed on the
channel for every message; a suppression for one WhatsApp template category depends on the template,
so only the pre-flight counts it). The other rules judge the message, the sender or the tier, not the
contact: the bulk pre-flight checks them when the job is created, on the same members, with the gate
itself. audiences/tests/test_preview_matches_gate.py proves that this
classification and `messaging.safety.safety_evaluate_many` decide alike for every kind of contact;
one aggregate query gives all the counts, so it stays fast at a million contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.utils import timezone

from audiences.spec import address_q, spec_q, window_q
from contacts.models import Channel, Contact
from messaging.models import MessageType, Suppression
from messaging.safety import FREE_FORM_WHATSAPP, SUPPRESSED_CODES, RefusalCode

SAMPLE_SIZE = 20


def segment_contacts(spec: dict, *, now: datetime | None = None) -> QuerySet[Contact]:
    """The active contacts a cleaned spec selects, right now (segments are dynamic)."""
    return Contact.objects.active().filter(spec_q(spec, now=now or timezone.now()))


def gate_rules(*, channel: str, message_type: str, now: datetime) -> list[tuple[str, Q]]:
    """The gate's contact rules for this kind of message, in its order: (code, Q of who it refuses)."""
    rules = [
        (RefusalCode.OPT_IN_REQUIRED.value, ~Q(**{f"opt_in_{channel}": True})),
        (RefusalCode.ADDRESS_MISSING.value, ~address_q(channel)),
    ]
    if channel == Channel.WHATSAPP and message_type in FREE_FORM_WHATSAPP:
        rules.append((RefusalCode.TEMPLATE_REQUIRED.value, ~window_q(now)))
    if channel in SUPPRESSED_CODES:
        # Addresses are stored as suppressions are keyed (emails lower-cased, phones in E.164), so an
        # IN over the few suppressed addresses classifies a million members in one hashed lookup each.
        field = "email" if channel == Channel.EMAIL else "phone"
        suppressed = Suppression.objects.active(now).filter(channel=channel, category="").values("address")
        rules.append((SUPPRESSED_CODES[channel].value, Q(**{f"{field}__in": suppressed})))
    return rules


def _first_rule_filters(rules: list[tuple[str, Q]]) -> list[tuple[str, Q]]:
    """Each rule's refusals: its Q and none of the earlier ones (the gate stops at the first)."""
    filters, earlier = [], Q()
    for code, refuses in rules:
        filters.append((code, refuses & ~earlier if earlier else refuses))
        earlier = earlier | refuses if earlier else refuses
    return filters


def gate_code_annotation(*, channel: str, message_type: str, now: datetime) -> Case:
    """Per contact, the code of the first rule that refuses it, or "" (the gate lets it through)."""
    whens = [When(refuses, then=Value(code)) for code, refuses in gate_rules(
        channel=channel, message_type=message_type, now=now)]  # fmt: skip
    return Case(*whens, default=Value(""), output_field=CharField())


@dataclass
class Preview:
    total: int
    will_send: int
    skipped: dict[str, int]
    opens_conversation: int | None
    sample: list[dict]

    def as_dict(self) -> dict:
        return {
            "count": self.total,
            "wouldSend": self.will_send,
            "skipped": self.skipped,
            "opensConversation": self.opens_conversation,
            "sample": self.sample,
        }


def segment_preview(
    spec: dict,
    *,
    channel: str,
    message_type: str = MessageType.TEMPLATE,
    now: datetime | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> Preview:
    """Count a cleaned spec's members and what the gate would skip and why, in one query.

    ``opensConversation`` (WhatsApp templates): members who would pass and are outside the window,
    so each opens a business-initiated conversation that counts against the tier.
    """
    now = now or timezone.now()
    members = segment_contacts(spec, now=now)
    rules = _first_rule_filters(gate_rules(channel=channel, message_type=message_type, now=now))
    counts = {"total": Count("pk")}
    counts.update({code: Count("pk", filter=refuses) for code, refuses in rules})
    business_initiated = channel == Channel.WHATSAPP and message_type == MessageType.TEMPLATE
    if business_initiated:
        refused = Q()
        for _code, refuses in rules:
            refused |= refuses
        counts["opens"] = Count("pk", filter=~refused & ~window_q(now))
    row = members.order_by().aggregate(**counts)
    skipped = {code: row[code] for code, _ in rules if row[code]}
    sample = []
    # Skipped when nobody matches: walking the newest-first index to find no one reads all of it.
    if sample_size and row["total"]:
        code = gate_code_annotation(channel=channel, message_type=message_type, now=now)
        for contact in members.annotate(gate_code=code).order_by("-created_at", "-id")[:sample_size]:
            sample.append({"contactId": str(contact.pk), "name": str(contact), "code": contact.gate_code})
    return Preview(
        total=row["total"],
        will_send=row["total"] - sum(skipped.values()),
        skipped=skipped,
        opens_conversation=row["opens"] if business_initiated else None,
        sample=sample,
    )
