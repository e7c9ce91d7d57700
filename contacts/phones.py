"""Phone numbers: one canonical form (E.164) for storage, several digit forms for search."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError

_E164 = phonenumbers.PhoneNumberFormat.E164
_NATIONAL = phonenumbers.PhoneNumberFormat.NATIONAL
_NON_DIGITS = re.compile(r"\D")


def _region(region: str | None) -> str:
    return (region or settings.DEFAULT_PHONE_REGION).upper()


def parse_phone(raw, region: str | None = None) -> phonenumbers.PhoneNumber:
    """Parse and validate a phone number typed in national or international form.

    National input ("98765 43210", "098765 43210") is read in ``region`` (default
    ``settings.DEFAULT_PHONE_REGION``); international input may start with "+" or the region's
    international prefix ("0091 98765 43210" in India).
    """
    if not isinstance(raw, str):
        raise ValidationError("Enter the phone number as text, e.g. +919876543210.", code="invalid_phone")
    text = raw.strip()
    if not text:
        raise ValidationError("Enter a phone number.", code="invalid_phone")
    region = _region(region)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            "%(value)s is not a phone number: use international form such as +919876543210.",
            code="invalid_phone",
            params={"value": repr(text)},
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            "%(value)s is not a valid phone number (read as %(e164)s): check the digits and the country code.",
            code="invalid_phone",
            params={"value": repr(text), "e164": phonenumbers.format_number(number, _E164)},
        )
    return number


def normalize_phone(raw, region: str | None = None) -> str:
    """The E.164 form of a phone number (``+919876543210``); ValidationError if it is not one."""
    return phonenumbers.format_number(parse_phone(raw, region), _E164)


def phone_search_forms(e164: str) -> list[str]:
    """The digit strings a stored number is found by: E.164 digits and national digits.

    "+919876543210" gives ["919876543210", "09876543210"]; the national significant number
    ("9876543210") is a substring of both, so every usual way of typing it matches.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [_NON_DIGITS.sub("", e164)]
    forms = [_NON_DIGITS.sub("", phonenumbers.format_number(number, _E164))]
    national = _NON_DIGITS.sub("", phonenumbers.format_number(number, _NATIONAL))
    if national and national not in forms[0]:
        forms.append(national)
    return forms


def phone_query_digits(query: str, region: str | None = None) -> str:
    """The digits to look for when someone types (part of) a phone number into search.

    A complete number in any form becomes its E.164 digits. A fragment keeps its digits, without
    the international prefix ("+", or "00" in India) so "+91 98765" and "0091 98765" both match
    the stored E.164 digits "9198765...".
    """
    region = _region(region)
    try:
        number = phonenumbers.parse(query, region)
        if phonenumbers.is_valid_number(number):
            return _NON_DIGITS.sub("", phonenumbers.format_number(number, _E164))
    except phonenumbers.NumberParseException:
        pass
    text = query.strip()
    digits = _NON_DIGITS.sub("", text)
    if text.startswith("+"):
        return digits
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    idd = metadata.international_prefix if metadata else None
    if idd:
        match = re.match(idd, digits)
        if match and match.end() > 0 and len(digits) > match.end():
            return digits[match.end() :]
    return digits
