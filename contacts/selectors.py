"""Reading contacts. Deleted contacts never come out of these."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from contacts.models import ConsentEvent, Contact
from contacts.phones import normalize_phone
from contacts.search import search_terms


def contact_search_q(query: str) -> Q:
    """The filter for ``query`` over search_text (empty Q for an empty query).

    ``search_text__contains`` is ``LIKE '%term%'`` on an already lower-cased, accent-free column:
    the form the GIN trigram index can serve (``icontains`` would wrap the column in UPPER()).
    """
    condition = Q()
    for term in search_terms(query or ""):
        condition &= Q(search_text__contains=term)
    return condition


def contact_search(*, query: str, queryset: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """Contacts whose name, phone or email contains ``query``: case- and accent-insensitive, partial.

    A phone typed in national or international form ("98765 43210", "+91 98765-43210",
    "0091 98765 43210") finds the contact. Several words must all match ("jose kumar").
    """
    base = Contact.objects.all() if queryset is None else queryset
    return base.filter(deleted_at__isnull=True).filter(contact_search_q(query))


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
