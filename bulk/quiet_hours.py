"""Quiet hours: when a bulk job's recipients may be sent to, per channel and message category.

BULK_QUIET_HOURS lists the allowed local window of each (channel, category), e.g. promotional SMS
only 09:00–21:00. The recipient's local time comes from their phone number's country (the
`phonenumbers` timezone data); a country spanning several zones must be inside the window in every
one of them. A recipient a chunk claims outside the window is not failed: it goes back to PENDING
with ``resume_at`` (the next moment the window opens) and the beat task (`bulk.tasks.bulk_scheduler_tick`)
queues its chunk again then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from phonenumbers import timezone as phone_timezone

from bulk.models import RUNNABLE_JOB_STATUSES, BulkJob, BulkJobChunk, BulkRecipient, ChunkStatus, RecipientStatus
from bulk.pricing import job_pricing_category
from contacts.models import Channel

ANY = "*"
UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class Rule:
    """Sends of ``channel`` + ``category`` only from ``start`` until ``end`` local time (may wrap midnight)."""

    channel: str
    category: str
    start: time
    end: time

    def allows(self, local: time) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def _clock(value, where: str) -> time:
    try:
        return time(*(int(part) for part in str(value).split(":")))  # HH:MM (or HH:MM:SS)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: {value!r} is not a time like 09:00") from None


def rules_parse(raw) -> list[Rule]:
    """BULK_QUIET_HOURS as rules; ValueError with a sentence saying what is wrong."""
    if not isinstance(raw, list):
        raise ValueError("BULK_QUIET_HOURS must be a JSON list of rules")
    rules = []
    for index, item in enumerate(raw):
        where = f"BULK_QUIET_HOURS[{index}]"
        if not isinstance(item, dict) or set(item) != {"channel", "category", "from", "until"}:
            raise ValueError(f"{where} must be an object with exactly channel, category, from and until")
        channel = str(item["channel"]).lower()
        if channel not in (*Channel.values, ANY):
            raise ValueError(f"{where}: channel {item['channel']!r} is not one of {', '.join(Channel.values)} or *")
        rules.append(
            Rule(channel, str(item["category"]).lower(), _clock(item["from"], where), _clock(item["until"], where))
        )
    return rules


def rule_for(channel: str, category: str) -> Rule | None:
    """The first configured rule for this channel and category (``*`` matches any)."""
    for rule in rules_parse(settings.BULK_QUIET_HOURS):
        if rule.channel in (channel, ANY) and rule.category in (category.lower(), ANY):
            return rule
    return None


def job_category(job: BulkJob) -> str:
    """The message category quiet hours are configured by: SMS its message type (promotional or
    transactional), WhatsApp its template's category (marketing, utility, authentication) or
    ``service`` for free-form text in the customer's window, email ``promotional``."""
    if job.channel == Channel.SMS:
        return settings.SMS_MESSAGE_TYPE.lower()
    if job.channel == Channel.WHATSAPP:
        return job_pricing_category(job)
    return "promotional"


def rule_for_job(job: BulkJob) -> Rule | None:
    return rule_for(job.channel, job_category(job))


@lru_cache(maxsize=4096)
def _zones_for_region(region: str) -> tuple[str, ...]:
    example = phonenumbers.example_number(region)
    names = phone_timezone.time_zones_for_number(example) if example is not None else ()
    return tuple(name for name in names if name != UNKNOWN_ZONE)


@lru_cache(maxsize=65536)
def zones_for_phone(phone: str) -> tuple[ZoneInfo, ...]:
    """The recipient's time zones from their number (its own prefix, else its country's); the
    business's when the number says nothing."""
    names: tuple[str, ...] = ()
    try:
        number = phonenumbers.parse(phone or "", None)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None:
        names = tuple(n for n in phone_timezone.time_zones_for_number(number) if n != UNKNOWN_ZONE)
        if not names:
            region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
                number.country_code
            )
            names = _zones_for_region(region) if region and region.isalpha() and region != "ZZ" else ()
    zones = []
    for name in names or (settings.BUSINESS_TIME_ZONE,):
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (ZoneInfo(settings.BUSINESS_TIME_ZONE),)


def _next_start(rule: Rule, local: datetime) -> datetime:
    start = datetime.combine(local.date(), rule.start, tzinfo=local.tzinfo)
    if start <= local:
        start = datetime.combine(local.date() + timedelta(days=1), rule.start, tzinfo=local.tzinfo)
    return start


def resume_at(rule: Rule | None, phone: str, now: datetime) -> datetime | None:
    """None if the recipient may be sent to now; else the earliest moment inside the window in every
    one of their time zones (or, if those windows never overlap, in the first zone's)."""
    if rule is None:
        return None
    zones = zones_for_phone(phone)
    moment = now
    for _ in range(2 * len(zones) + 2):
        moved = False
        for tz in zones:
            local = moment.astimezone(tz)
            if not rule.allows(local.time()):
                moment = _next_start(rule, local)
                moved = True
        if not moved:
            return None if moment == now else moment.astimezone(ZoneInfo("UTC"))
    local = now.astimezone(zones[0])
    return None if rule.allows(local.time()) else _next_start(rule, local).astimezone(ZoneInfo("UTC"))


def chunks_resume_due(*, now: datetime | None = None) -> int:
    """Queue again the chunks of running jobs that hold recipients whose quiet hours have ended."""
    from bulk.execution import chunks_enqueue  # execution imports batch, which imports this module

    now = now or timezone.now()
    due = BulkRecipient.objects.filter(
        job_id=OuterRef("job_id"),
        sequence__gte=OuterRef("start_sequence"),
        sequence__lt=OuterRef("end_sequence"),
        status=RecipientStatus.PENDING,
        resume_at__lte=now,
    )
    chunks = BulkJobChunk.objects.filter(job__status__in=RUNNABLE_JOB_STATUSES, status=ChunkStatus.PENDING).filter(
        Exists(due)
    )
    queued = 0
    for job_id in set(chunks.values_list("job_id", flat=True)):
        queued += chunks_enqueue(job_id, statuses=(ChunkStatus.PENDING,))
    return queued
