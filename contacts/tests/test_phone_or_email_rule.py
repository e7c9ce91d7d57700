from __future__ import annotations

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction

from contacts.models import ConsentSource, Contact
from contacts.services import contact_create, contact_update

pytestmark = pytest.mark.django_db


def test_a_contact_without_phone_or_email_is_refused_with_a_clear_message():
    with pytest.raises(ValidationError) as excinfo:
        contact_create(name="Nobody", source=ConsentSource.API)

    assert excinfo.value.message_dict == {NON_FIELD_ERRORS: ["A contact needs a phone number or an email address."]}
    assert not Contact.objects.exists()


def test_blank_phone_and_email_count_as_missing():
    with pytest.raises(ValidationError, match="needs a phone number or an email"):
        contact_create(name="Nobody", phone="  ", email="", source=ConsentSource.API)


@pytest.mark.parametrize(("phone", "email"), [("98765 43210", None), (None, "a@example.com")])
def test_a_phone_or_an_email_alone_is_enough(phone, email):
    contact = contact_create(phone=phone, email=email, source=ConsentSource.API)

    assert Contact.objects.filter(pk=contact.pk).exists()


def test_an_update_cannot_remove_the_last_way_to_reach_a_contact():
    contact = contact_create(phone="98765 43210", source=ConsentSource.API)

    with pytest.raises(ValidationError, match="needs a phone number or an email"):
        contact_update(contact=contact, data={"phone": None}, actor=None, source=ConsentSource.API)

    contact.refresh_from_db()
    assert contact.phone == "+919876543210"


def test_the_database_refuses_a_contact_with_neither_phone_nor_email():
    with pytest.raises(IntegrityError, match="contact_has_phone_or_email"), transaction.atomic():
        Contact.objects.create(name="Nobody")


def test_the_database_refuses_empty_strings_as_phone_and_email():
    with pytest.raises(IntegrityError, match="contact_has_phone_or_email"), transaction.atomic():
        Contact.objects.create(name="Nobody", phone="", email="")


def test_the_database_refuses_a_phone_that_is_not_e164():
    with pytest.raises(IntegrityError, match="contact_phone_is_e164"), transaction.atomic():
        Contact.objects.create(phone="98765 43210")


def test_invalid_phone_and_email_are_both_reported_by_field():
    with pytest.raises(ValidationError) as excinfo:
        contact_create(phone="12345", email="not-an-email", source=ConsentSource.API)

    errors = excinfo.value.message_dict
    assert "is not a valid phone number" in errors["phone"][0]
    assert errors["email"] == ["'not-an-email' is not a valid email address."]


def test_email_is_stored_lower_case_and_phone_as_e164():
    contact = contact_create(phone="+91 98765-43210", email="  Asha@Example.COM ", source=ConsentSource.API)

    contact.refresh_from_db()
    assert (contact.phone, contact.email) == ("+919876543210", "asha@example.com")
