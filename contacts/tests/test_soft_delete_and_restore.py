from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditLog
from contacts.models import ConsentSource, Contact
from contacts.selectors import contact_get_by_phone, contact_search
from contacts.services import contact_create, contact_restore, contact_soft_delete, contact_update

pytestmark = pytest.mark.django_db


def test_a_deleted_contact_keeps_its_row_and_history_but_leaves_lists_and_search(make_contact, operator):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"sms": True})

    contact_soft_delete(contact=contact, actor=operator)

    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert contact.consent_events.count() == 1
    assert not Contact.objects.active().filter(pk=contact.pk).exists()
    assert not contact_search(query="asha").exists()
    assert contact_get_by_phone("+919876543210") is None
    assert AuditLog.objects.filter(action="contact.delete", resource_id=str(contact.pk), user=operator).exists()


def test_deleting_twice_is_refused_clearly(make_contact):
    contact = make_contact()
    contact_soft_delete(contact=contact, actor=None)

    with pytest.raises(ValidationError, match="already deleted"):
        contact_soft_delete(contact=contact, actor=None)


def test_a_deleted_contact_cannot_be_updated(make_contact):
    contact = make_contact()
    contact_soft_delete(contact=contact, actor=None)

    with pytest.raises(ValidationError, match="restore it first"):
        contact_update(contact=contact, data={"name": "X"}, actor=None, source=ConsentSource.API)


def test_restore_brings_the_contact_back_into_search(make_contact, admin_role_user):
    contact = make_contact(name="Asha")
    contact_soft_delete(contact=contact, actor=None)

    contact_restore(contact=contact, actor=admin_role_user)

    assert contact.deleted_at is None
    assert list(contact_search(query="asha")) == [contact]
    assert AuditLog.objects.filter(action="contact.restore", user=admin_role_user).exists()


def test_restore_fails_clearly_when_another_contact_now_has_the_phone(make_contact):
    contact = make_contact(phone="+919876543210", email="asha@example.com")
    contact_soft_delete(contact=contact, actor=None)
    holder = contact_create(phone="+919876543210", source=ConsentSource.API)

    with pytest.raises(ValidationError) as excinfo:
        contact_restore(contact=contact, actor=None)

    message = excinfo.value.message_dict["phone"][0]
    assert str(holder.pk) in message and "+919876543210" in message
    contact.refresh_from_db()
    assert contact.deleted_at is not None


def test_restore_fails_clearly_when_another_contact_now_has_the_email(make_contact):
    contact = make_contact(email="asha@example.com")
    contact_soft_delete(contact=contact, actor=None)
    contact_create(email="asha@example.com", source=ConsentSource.API)

    with pytest.raises(ValidationError) as excinfo:
        contact_restore(contact=contact, actor=None)

    assert "asha@example.com" in excinfo.value.message_dict["email"][0]


def test_restoring_a_contact_that_is_not_deleted_is_refused(make_contact):
    with pytest.raises(ValidationError, match="not deleted"):
        contact_restore(contact=make_contact(), actor=None)
