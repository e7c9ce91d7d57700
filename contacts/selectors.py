"""Reading contacts. Deleted contacts never come out of these."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Collate

from contacts.models import ConsentEvent, Contact
from contacts.phones import normalize_phone
from contacts.search import MIN_SUBSTRING_LENGTH, exact_phone, search_terms

# Sorting more matches than this by name costs more than a user waits for (see bench/contacts_search.py).
BROAD_MATCH = 50_000


def planner_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of how many rows ``queryset`` returns (None on other databases).

    Costs a plan, not a scan: well under a millisecond.
    """
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    if isinstance(plan, list):
        plan = plan[0]
    return int(plan["Plan"]["Plan Rows"])


def _short_prefix(terms: list[str]) -> str | None:
    if terms and all(len(term) < MIN_SUBSTRING_LENGTH for term in terms):
        return " ".join(terms)
    return None


def contact_search_q(query: str) -> Q:
    """The matching rules of ``contact_search`` as a Q, to combine with other filters (no order).

    Prefer ``contact_search``/``contact_filter_search`` for lists: they also pick the order that
    keeps the query on its index.
    """
    query = query or ""
    e164 = exact_phone(query)
    if e164 is not None:
        return Q(phone=e164)
    terms = search_terms(query)
    prefix = _short_prefix(terms)
    if prefix is not None:
        return Q(search_text__startswith=prefix)
    condition = Q()
    for term in terms:
        condition &= Q(search_text__contains=term)
    return condition


def contact_filter_search(queryset: QuerySet[Contact], query: str) -> QuerySet[Contact]:
    """Narrow ``queryset`` to contacts matching ``query``, best order for the kind of query.

    Three kinds, each served by its own index on PostgreSQL (see migrations 0002 and 0006):

    - a complete phone number in any form is looked up exactly, through the phone's unique index
      (digit strings make poor trigrams: a million numbers share a thousand of them);
    - words (and phone fragments) of three characters or more: every word must be contained in
      search_text, ``LIKE '%word%'`` on the lower-cased, accent-free column, which the GIN trigram
      index serves (``icontains`` would wrap the column in UPPER() and defeat it). Results come in
      alphabetical order of search_text (the normalised name first). This order deliberately has no
      index: with one, the planner may walk it row by row hoping to meet 50 matches early, which is
      slow whenever its guess of how common the words are is wrong;
    - a search so broad that PostgreSQL's planner expects it to match BROAD_MATCH contacts or more
      ("gmail", "example") comes newest first instead, like the list: its first page is then the
      first 50 matches on the order index, where sorting them all by name would take seconds;
    - only one or two characters: too short for trigrams, so they match the start of search_text
      (the name, or the email when there is no name), through a C-collated btree index that also
      gives the order.

    An empty query leaves the queryset as it is.
    """
    query = query or ""
    if exact_phone(query) is not None:
        return queryset.filter(contact_search_q(query))
    terms = search_terms(query)
    if not terms:
        return queryset
    prefix = _short_prefix(terms)
    if prefix is not None and connection.vendor == "postgresql":
        return (
            queryset.alias(search_c=Collate("search_text", "C"))
            .filter(search_c__startswith=prefix)
            .order_by("search_c", "id")
        )
    matches = queryset.filter(contact_search_q(query))
    estimate = planner_estimate(matches)
    if estimate is not None and estimate >= BROAD_MATCH:
        return matches.order_by("-created_at", "-id")
    return matches.order_by("search_text", "id")


def contact_search(*, query: str, queryset: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """Contacts not deleted whose name, phone or email contains ``query``; case- and accent-insensitive.

    A phone typed in national or international form ("98765 43210", "+91 98765-43210",
    "0091 98765 43210") finds the contact; several words must all match ("kumar jose"); one or two
    characters match the start of the name. Ordered by name (accents and case ignored), except a very
    broad search (newest first) and an empty query (the queryset's order).
    """
    base = Contact.objects.all() if queryset is None else queryset
    return contact_filter_search(base.filter(deleted_at__isnull=True), query)


def contact_get_by_phone(phone: str) -> Contact | None:
    """The active contact with this phone number (any usual form), or None."""
    try:
        e164 = normalize_phone(phone)
    except ValidationError:
        return None
    return Contact.objects.active().filter(phone=e164).first()


def contact_get_by_email(email: str) -> Contact | None:
    """The active contact with this email address (case-insensitive), or None."""
    email = (email or "").strip().lower()
    if not email:
        return None
    return Contact.objects.active().filter(email=email).first()


def contact_consent_history(*, contact: Contact) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(contact=contact).select_related("changed_by").order_by("-changed_at", "-id")
