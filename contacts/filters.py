"""List filters for /api/contacts/: ?search=, ?optInWhatsApp=true|false, ?optInSms=, ?optInEmail=,
?optInVoice=, ?optInRcs=."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from contacts.models import Contact
from contacts.selectors import contact_search


class StrictBooleanFormField(forms.Field):
    """``true`` or ``false``; anything else is an error, never silently "no filter"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value == "true":
            return True
        if value == "false":
            return False
        raise ValidationError("Use true or false, not %(value)r.", code="invalid", params={"value": value})


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanFormField


class ContactFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        label=(
            "Name, phone or email contains this (case and accents ignored; a phone in any format). "
            "One or two characters match the start of the name. Results come in name order (newest "
            "first when the search matches a very large share of all contacts)."
        ),
    )
    optInWhatsApp = StrictBooleanFilter(field_name="opt_in_whatsapp", label="WhatsApp opt-in")
    optInSms = StrictBooleanFilter(field_name="opt_in_sms", label="SMS opt-in")
    optInEmail = StrictBooleanFilter(field_name="opt_in_email", label="Email opt-in")
    optInVoice = StrictBooleanFilter(field_name="opt_in_voice", label="Voice opt-in")
    optInRcs = StrictBooleanFilter(field_name="opt_in_rcs", label="RCS opt-in")

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        return contact_search(query=value, queryset=queryset)
