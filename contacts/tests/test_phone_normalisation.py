from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from contacts.phones import normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["98765 43210", "098765 43210", "+91 98765-43210", "0091 98765 43210", "+919876543210", " (+91) 98765.43210 "],
)
def test_an_indian_number_in_any_usual_form_becomes_e164(raw):
    assert normalize_phone(raw) == "+919876543210"


def test_national_input_is_read_in_the_configured_default_region(settings):
    settings.DEFAULT_PHONE_REGION = "US"

    assert normalize_phone("(201) 555-0123") == "+12015550123"


def test_an_explicit_region_wins_over_the_default():
    assert normalize_phone("020 7946 0018", region="GB") == "+442079460018"


def test_an_international_number_keeps_its_own_country():
    assert normalize_phone("+1 201 555 0123") == "+12015550123"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12345", "is not a valid phone number"),
        ("call me", "is not a phone number"),
        ("", "Enter a phone number"),
        ("+91 55555 55555", "is not a valid phone number"),
    ],
)
def test_an_invalid_number_is_refused_with_a_clear_message(raw, message):
    with pytest.raises(ValidationError) as excinfo:
        normalize_phone(raw)

    assert message in excinfo.value.messages[0]


def test_a_number_that_is_not_text_is_refused():
    with pytest.raises(ValidationError, match="as text"):
        normalize_phone(9876543210)
