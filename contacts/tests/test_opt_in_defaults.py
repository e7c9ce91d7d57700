from __future__ import annotations

import pytest

from accounts.models import AuditLog
from contacts.models import ConsentEvent, ConsentSource, Contact
from contacts.services import contact_create

pytestmark = pytest.mark.django_db


def test_a_new_contact_has_every_opt_in_false_and_no_consent_history():
    contact = contact_create(name="Asha", phone="98765 43210", source=ConsentSource.API)

    contact.refresh_from_db()
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (False, False, False)
    assert not ConsentEvent.objects.filter(contact=contact).exists()


def test_an_opt_in_given_at_creation_is_set_and_recorded_with_no_old_value(operator):
    contact = contact_create(
        name="Asha", phone="98765 43210", opt_ins={"whatsapp": True}, actor=operator, source=ConsentSource.API
    )

    contact.refresh_from_db()
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (True, False, False)
    event = ConsentEvent.objects.get(contact=contact)
    assert (event.channel, event.old_value, event.new_value) == ("whatsapp", None, True)
    assert (event.changed_by, event.actor, event.source) == (operator, operator.email, "api")


def test_an_explicit_false_at_creation_is_recorded_too():
    contact = contact_create(email="a@example.com", opt_ins={"email": False}, source=ConsentSource.IMPORT)

    event = ConsentEvent.objects.get(contact=contact)
    assert (event.channel, event.old_value, event.new_value, event.source) == ("email", None, False, "import")
    assert event.actor == "system"


def test_creating_a_contact_writes_an_audit_entry(operator):
    contact = contact_create(name="Asha", email="Asha@Example.com", actor=operator, source=ConsentSource.API)

    entry = AuditLog.objects.get(action="contact.create", resource_id=str(contact.pk))
    assert entry.user == operator
    assert entry.details["source"] == "api"


def test_a_contact_saved_directly_still_defaults_to_no_opt_in():
    contact = Contact.objects.create(phone="+919876543210")

    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (False, False, False)
