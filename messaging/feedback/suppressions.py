"""Suppressions: addresses the gate refuses on one channel (and, for WhatsApp, maybe one template category).

Written only here: `suppression_add` (by the feedback of SES, EUM SMS and WhatsApp) and
`suppression_lift` (an Admin, audited). Read by the gate through `suppressed_addresses`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.services import audit_record
from contacts.models import Channel, Contact
from messaging.models import Suppression
from wecare import metrics

logger = logging.getLogger(__name__)


def suppression_address(channel: str, address: str | None) -> str:
    """The form an address is suppressed under: email lower-cased, phone numbers as given (E.164)."""
    address = (address or "").strip()
    return address.lower() if channel == Channel.EMAIL else address


def contact_address(contact: Contact, channel: str) -> str:
    return suppression_address(channel, contact.email if channel == Channel.EMAIL else contact.phone)


def suppression_add(
    *,
    channel: str,
    address: str,
    reason: str,
    detail: str = "",
    category: str = "",
    contact: Contact | None = None,
    provider_event_id: str = "",
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Suppression, bool]:
    """Suppress ``address`` on ``channel``; (suppression, created). Idempotent: a redelivered event, or a
    second reason for an address already suppressed, leaves the first suppression (and its "since")
    as it is — unless that one had expired, then it starts again with the new reason."""
    if channel not in Channel.values:
        raise ValidationError(f"unknown channel {channel!r}")
    address = suppression_address(channel, address)
    if not address:
        raise ValidationError("a suppression needs an address")
    now = now or timezone.now()
    key = {"channel": channel, "address": address, "category": category}
    values = {
        "reason": reason,
        "detail": detail[:1000],
        "provider_event_id": provider_event_id[:256],
        "contact": contact,
        "created_at": now,
        "expires_at": expires_at,
    }
    with transaction.atomic():
        existing = Suppression.objects.select_for_update().filter(lifted_at__isnull=True, **key).first()
        if existing is not None:
            if existing.expires_at is None or existing.expires_at > now:
                return existing, False
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            suppression = existing
        else:
            try:
                with transaction.atomic():
                    suppression = Suppression.objects.create(**key, **values)
            except IntegrityError:  # another worker suppressed it a moment ago
                return Suppression.objects.get(lifted_at__isnull=True, **key), False
    metrics.emit("Suppressions", channel=channel, reason=reason)
    logger.info(
        "suppressed %s address (%s%s) contact=%s",
        channel,
        reason,
        f", category {category}" if category else "",
        contact.pk if contact else "-",
        extra={"event": "suppression.add", "channel": channel, "reason": reason, "suppressionId": str(suppression.pk)},
    )
    return suppression, True


def suppression_lift(*, suppression: Suppression, actor, reason: str = "") -> bool:
    """An Admin lifts a suppression (audited); the address may be sent to again. Returns whether it changed."""
    if actor is None or not actor.has_perm("messaging.lift_suppression"):
        audit_record(
            user=actor,
            action="suppression.lift_denied",
            resource_type="suppression",
            resource_id=suppression.pk,
            details={"channel": suppression.channel, "reason": suppression.reason},
        )
        raise PermissionDenied("Only an Admin may lift a suppression.")
    with transaction.atomic():
        changed = Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lifted_by=actor, lift_reason=(reason or "")[:500]
        )
        if changed:
            audit_record(
                user=actor,
                action="suppression.lift",
                resource_type="suppression",
                resource_id=suppression.pk,
                details={
                    "channel": suppression.channel,
                    "reason": suppression.reason,
                    "category": suppression.category,
                    "contact": str(suppression.contact_id or ""),
                    "since": suppression.created_at.isoformat(),
                    "liftReason": (reason or "")[:500],
                },
            )
    suppression.refresh_from_db()
    return bool(changed)


def suppressed_addresses(
    channel: str, addresses: Iterable[str], *, now: datetime | None = None
) -> dict[str, list[Suppression]]:
    """The active suppressions of these addresses on ``channel``, by address, in one query."""
    wanted = {suppression_address(channel, a) for a in addresses if a}
    if not wanted:
        return {}
    found: dict[str, list[Suppression]] = {}
    for suppression in Suppression.objects.active(now).filter(channel=channel, address__in=wanted):
        found.setdefault(suppression.address, []).append(suppression)
    return found


def suppression_matching(suppressions: Iterable[Suppression], *, category: str = "") -> Suppression | None:
    """The suppression that stops a send of this template category ("" for anything but a template)."""
    for suppression in suppressions:
        if not suppression.category or suppression.category == (category or "").upper():
            return suppression
    return None


def contact_suppressions(contact: Contact, *, now: datetime | None = None) -> list[Suppression]:
    """What the contact page shows: the active suppressions of the contact's current addresses."""
    conditions = Q()
    if contact.email:
        conditions |= Q(channel=Channel.EMAIL, address=suppression_address(Channel.EMAIL, contact.email))
    if contact.phone:
        conditions |= Q(channel__in=[Channel.SMS, Channel.WHATSAPP], address=contact.phone)
    if not conditions:
        return []
    return list(Suppression.objects.active(now).filter(conditions).order_by("channel", "-created_at"))


def suppression_flag_annotate(contacts: QuerySet[Contact], channel: str, *, now: datetime) -> QuerySet[Contact]:
    """The contacts with whether their ``channel`` address has an active suppression, in the same query
    (the send path reads contact and flag at once instead of asking `suppressed_addresses` again)."""
    address = Lower(OuterRef("email")) if channel == Channel.EMAIL else OuterRef("phone")
    suppressed = Exists(Suppression.objects.active(now).filter(channel=channel, address=address))
    return contacts.annotate(
        suppression_flag_seen=suppressed, suppression_flag_channel=Value(channel, output_field=CharField())
    )


def suppression_known_clear(contact: Contact, channel: str) -> bool:
    """The contact was read with its flag for ``channel`` and no active suppression matched its address,
    compared exactly as `suppressed_addresses` would compare it (else the caller asks the table)."""
    if getattr(contact, "suppression_flag_channel", None) != channel or getattr(contact, "suppression_flag_seen", True):
        return False
    stored = (contact.email if channel == Channel.EMAIL else contact.phone) or ""
    # The database lower-cased the stored address: the same as Python's only for ASCII; nothing stripped.
    return bool(stored) and stored.isascii() and stored == stored.strip()
