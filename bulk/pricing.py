"""What a WhatsApp bulk job costs: an estimate before confirmation, the running cost while it sends.

Meta prices a WhatsApp message by its pricing category (marketing, utility, authentication,
service) and the recipient's country. WHATSAPP_PRICE_TABLE holds those prices (category → country
ISO code or ``*`` → price, in WHATSAPP_PRICE_CURRENCY). The pre-flight estimates with the category
the job's template implies; once sent, each message's category is the one Meta reports in the status
events' pricing block (Message.pricing_category), which may differ (a utility template inside the
customer's window is reported as service). Dry-run sends reach no provider and cost nothing.
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.db.models import Count, Q

from bulk.models import BulkJob, BulkRecipient, RecipientStatus
from contacts.models import Channel
from messaging.models import MessageStatus, WhatsAppTemplate

CATEGORIES = ("marketing", "utility", "authentication", "service")
SERVICE = "service"
CENTS = Decimal("0.0001")


def price_table_check(raw) -> list[str]:
    """Problems of a WHATSAPP_PRICE_TABLE value, as sentences (empty: fine)."""
    if not isinstance(raw, dict):
        return ["WHATSAPP_PRICE_TABLE must be a JSON object of category → {country: price}."]
    problems = []
    for category, prices in raw.items():
        if not isinstance(prices, dict):
            problems.append(f"WHATSAPP_PRICE_TABLE[{category!r}] must be an object of country → price.")
            continue
        for country, price in prices.items():
            if country != "*" and not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
                problems.append(f"WHATSAPP_PRICE_TABLE[{category!r}]: {country!r} is not a 2-letter country code or *.")
            if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
                problems.append(f"WHATSAPP_PRICE_TABLE[{category!r}][{country!r}] must be a price ≥ 0.")
    return problems


def price(category: str, country: str) -> Decimal | None:
    """The price of one message of ``category`` to ``country``; None when the table has none."""
    prices = settings.WHATSAPP_PRICE_TABLE.get((category or "").lower())
    if not isinstance(prices, dict):
        return None
    value = prices.get((country or "").upper(), prices.get("*"))
    return None if value is None else Decimal(str(value))


@lru_cache(maxsize=65536)
def country_for_phone(phone: str) -> str:
    """The ISO country of a number in E.164 (blank if it has none)."""
    try:
        number = phonenumbers.parse(phone or "", None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return region if region and len(region) == 2 and region.isalpha() and region != "ZZ" else ""


def job_pricing_category(job: BulkJob) -> str:
    """The category a WhatsApp job's messages are expected to be priced in: its template's, else service."""
    if job.message_type != "template" or not job.template_name:
        return SERVICE
    category = (
        WhatsAppTemplate.objects.filter(name=job.template_name, language=job.template_language)
        .values_list("category", flat=True)
        .first()
    )
    return (category or "marketing").lower()  # unknown template: the dearest common category, not free


def _total(counts: Counter, *, currency: str) -> dict:
    """{(category, country): messages} → total, per-category breakdown, and what the table cannot price."""
    total = Decimal(0)
    by_category: Counter = Counter()
    unpriced = 0
    for (category, country), count in counts.items():
        each = price(category, country)
        if each is None:
            unpriced += count
            continue
        total += each * count
        by_category[category] += count
    return {
        "currency": currency,
        "amount": str(total.quantize(CENTS, rounding=ROUND_HALF_UP)),
        "messages": sum(counts.values()),
        "byCategory": dict(sorted(by_category.items())),
        "unpriced": unpriced,
    }


def preflight_estimate(job: BulkJob, rows: list[BulkRecipient]) -> dict | None:
    """The estimated cost of the sendable recipients (WhatsApp jobs; None for other channels)."""
    if job.channel != Channel.WHATSAPP:
        return None
    category = job_pricing_category(job)
    counts = Counter((category, row.country) for row in rows if row.sequence is not None)
    return {**_total(counts, currency=settings.WHATSAPP_PRICE_CURRENCY), "category": category}


def job_running_cost(job: BulkJob) -> dict | None:
    """The cost of what the job has sent so far, by each message's reported pricing category (the
    expected one until Meta reports it); None for other channels."""
    if job.channel != Channel.WHATSAPP:
        return None
    expected = job_pricing_category(job)
    # A message the provider later reports failed is not charged.
    sent = BulkRecipient.objects.filter(job=job, status=RecipientStatus.SENT, message__isnull=False).exclude(
        message__status=MessageStatus.FAILED
    )
    groups = sent.values("country", "message__pricing_category").annotate(
        live=Count("pk", filter=Q(message__dry_run=False)), dry=Count("pk", filter=Q(message__dry_run=True))
    )
    counts: Counter = Counter()
    reported = dry_run = 0
    for group in groups:
        category = group["message__pricing_category"] or expected
        counts[(category, group["country"])] += group["live"]
        dry_run += group["dry"]
        if group["message__pricing_category"]:
            reported += group["live"]
    return {**_total(counts, currency=settings.WHATSAPP_PRICE_CURRENCY), "reported": reported, "dryRun": dry_run}
