from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from contacts.models import ConsentSource, Contact
from contacts.services import contact_create, contact_soft_delete, contact_update

pytestmark = pytest.mark.django_db


def test_a_second_contact_with_the_same_phone_in_another_form_is_refused():
    contact_create(phone="+919876543210", source=ConsentSource.API)

    with pytest.raises(ValidationError) as excinfo:
        contact_create(phone="098765 43210", source=ConsentSource.API)

    assert excinfo.value.message_dict == {"phone": ["Another contact already has this phone number."]}
    assert Contact.objects.count() == 1


def test_a_second_contact_with_the_same_email_in_another_case_is_refused():
    contact_create(email="asha@example.com", source=ConsentSource.API)

    with pytest.raises(ValidationError) as excinfo:
        contact_create(email="ASHA@example.com", source=ConsentSource.API)

    assert excinfo.value.message_dict == {"email": ["Another contact already has this email address."]}


def test_both_duplicates_are_reported_at_once():
    contact_create(phone="+919876543210", email="asha@example.com", source=ConsentSource.API)

    with pytest.raises(ValidationError) as excinfo:
        contact_create(phone="+919876543210", email="asha@example.com", source=ConsentSource.API)

    assert set(excinfo.value.message_dict) == {"phone", "email"}


def test_an_update_to_another_contacts_phone_is_refused():
    contact_create(phone="+919876543210", source=ConsentSource.API)
    other = contact_create(phone="+919876543211", source=ConsentSource.API)

    with pytest.raises(ValidationError, match="already has this phone number"):
        contact_update(contact=other, data={"phone": "9876543210"}, actor=None, source=ConsentSource.API)


def test_a_deleted_contacts_phone_and_email_can_be_used_again():
    old = contact_create(phone="+919876543210", email="asha@example.com", source=ConsentSource.API)
    contact_soft_delete(contact=old, actor=None)

    new = contact_create(phone="+919876543210", email="asha@example.com", source=ConsentSource.API)

    assert new.pk != old.pk


def test_the_database_enforces_uniqueness_among_contacts_not_deleted():
    Contact.objects.create(phone="+919876543210", email="a@example.com")

    with pytest.raises(IntegrityError, match="contact_phone_unique_when_active"), transaction.atomic():
        Contact.objects.create(phone="+919876543210")
    with pytest.raises(IntegrityError, match="contact_email_unique_when_active"), transaction.atomic():
        Contact.objects.create(email="a@example.com")


def test_a_race_lost_to_the_database_is_reported_like_the_check(monkeypatch):
    contact_create(phone="+919876543210", source=ConsentSource.API)

    # Simulate a concurrent insert between the check and the insert: the check sees no one.
    def check_that_sees_no_one(**kw):
        return {"name": "", "phone": kw["phone"], "email": None}

    monkeypatch.setattr("contacts.services.contact_clean", check_that_sees_no_one)

    with pytest.raises(ValidationError) as excinfo:
        contact_create(phone="+919876543210", source=ConsentSource.API)

    assert excinfo.value.message_dict == {"phone": ["Another contact already has this phone number."]}
    assert Contact.objects.count() == 1
