"""List filters for /api/contacts/ and the contact list: ?search=, ?optInWhatsApp=true|false, ?optInSms=,
?optInEmail=, ?tag=<name>, ?attribute=<name>:<value> (equals, by the attribute's type)."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
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


class SpecFormField(forms.CharField):
    """A tag name, or ``name:value`` of a declared attribute, as a checked segment spec: the same
    condition an audience uses, so a tag or an attribute means one thing everywhere."""

    def __init__(self, *, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        from audiences.spec import spec_clean  # audiences builds on contacts: imported on use

        if self.kind == "tag":
            raw = {"tagsAny": [value]}
        else:
            attribute, _, wanted = value.partition(":")
            raw = {"attributes": [{"name": attribute.strip(), "op": "equals", "value": wanted}]}
        try:
            return spec_clean(raw)
        except ValidationError as exc:
            raise ValidationError([m for ms in exc.message_dict.values() for m in ms]) from None


@extend_schema_field(OpenApiTypes.STR)
class SpecFilter(django_filters.Filter):
    field_class = SpecFormField

    def __init__(self, *, kind: str, **kwargs):
        super().__init__(**kwargs)
        self.extra["kind"] = kind


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

    tag = SpecFilter(kind="tag", method="filter_spec", label="Has this tag")
    attribute = SpecFilter(
        kind="attribute", method="filter_spec", label="name:value — the declared attribute equals it (e.g. city:Pune)"
    )

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_spec(self, queryset, name, value):
        from audiences.spec import spec_q  # audiences builds on contacts: imported on use

        return queryset.filter(spec_q(value, now=timezone.now())) if value else queryset

    def filter_search(self, queryset, name, value):
        return contact_search(query=value, queryset=queryset)
