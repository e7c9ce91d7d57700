from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import AuditLog
from contacts.models import ConsentEvent, ConsentSource, Contact
from contacts.services import contact_set_opt_in, contact_update

pytestmark = pytest.mark.django_db


def test_setting_an_opt_in_records_old_new_who_and_source(make_contact, operator):
    contact = make_contact()

    changed = contact_set_opt_in(contact=contact, channel="sms", value=True, actor=operator, source=ConsentSource.UI)

    assert changed is True
    contact.refresh_from_db()
    assert contact.opt_in_sms is True
    event = ConsentEvent.objects.get(contact=contact)
    assert (event.channel, event.old_value, event.new_value, event.source) == ("sms", False, True, "ui")
    assert (event.changed_by, event.actor) == (operator, operator.email)
    assert event.changed_at is not None
    audit = AuditLog.objects.get(action="contact.consent", resource_id=str(contact.pk))
    assert audit.details == {"channel": "sms", "old": False, "new": True, "source": "ui"}


def test_setting_an_opt_in_to_its_current_value_records_nothing(make_contact):
    contact = make_contact()

    changed = contact_set_opt_in(contact=contact, channel="sms", value=False, source=ConsentSource.API)

    assert changed is False
    assert not ConsentEvent.objects.filter(contact=contact).exists()
    assert not AuditLog.objects.filter(action="contact.consent").exists()


def test_an_inbound_stop_keyword_is_recorded_with_its_own_source(make_contact):
    contact = make_contact(opt_ins={"whatsapp": True})

    contact_set_opt_in(contact=contact, channel="whatsapp", value=False, source=ConsentSource.INBOUND_KEYWORD)

    latest = ConsentEvent.objects.filter(contact=contact).order_by("-changed_at").first()
    assert (latest.old_value, latest.new_value) == (True, False)
    assert (latest.source, latest.actor) == ("inbound_keyword", "system")


@pytest.mark.parametrize("value", ["yes", 1, "true", None, 0])
def test_set_opt_in_refuses_anything_but_a_real_boolean(make_contact, value):
    contact = make_contact()

    with pytest.raises(ValidationError, match="Must be true or false"):
        contact_set_opt_in(contact=contact, channel="sms", value=value, source=ConsentSource.API)

    contact.refresh_from_db()
    assert contact.opt_in_sms is False
    assert not ConsentEvent.objects.filter(contact=contact).exists()


def test_set_opt_in_refuses_an_unknown_channel_or_source(make_contact):
    contact = make_contact()

    with pytest.raises(ValidationError, match="Unknown channel"):
        contact_set_opt_in(contact=contact, channel="fax", value=True, source=ConsentSource.API)
    with pytest.raises(ValidationError, match="Unknown consent source"):
        contact_set_opt_in(contact=contact, channel="sms", value=True, source="guess")


def test_an_update_changes_only_the_opt_ins_it_names(make_contact, operator):
    contact = make_contact(opt_ins={"whatsapp": True})

    contact_update(contact=contact, data={"opt_in_sms": True}, actor=operator, source=ConsentSource.API)

    contact.refresh_from_db()
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (True, True, False)
    events = ConsentEvent.objects.filter(contact=contact).order_by("changed_at")
    assert [(e.channel, e.old_value, e.new_value) for e in events] == [("whatsapp", None, True), ("sms", False, True)]


def test_an_update_that_does_not_name_opt_ins_leaves_them_and_the_history_alone(make_contact, operator):
    contact = make_contact(opt_ins={"email": True}, email="asha@example.com")

    contact_update(contact=contact, data={"name": "Asha Rao"}, actor=operator, source=ConsentSource.API)

    contact.refresh_from_db()
    assert contact.name == "Asha Rao"
    assert contact.opt_in_email is True
    assert ConsentEvent.objects.filter(contact=contact).count() == 1
    audit = AuditLog.objects.get(action="contact.update", resource_id=str(contact.pk))
    assert audit.details["changes"] == {"name": ["", "Asha Rao"]}


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_an_update_with_a_non_boolean_opt_in_changes_nothing_at_all(make_contact, operator, value):
    contact = make_contact(name="Asha")

    with pytest.raises(ValidationError) as excinfo:
        contact_update(
            contact=contact, data={"name": "Changed", "opt_in_sms": value}, actor=operator, source=ConsentSource.API
        )

    assert "opt_in_sms" in excinfo.value.message_dict
    contact.refresh_from_db()
    assert (contact.name, contact.opt_in_sms) == ("Asha", False)
    assert not ConsentEvent.objects.filter(contact=contact).exists()


def test_an_update_refuses_unknown_fields(make_contact):
    contact = make_contact()

    with pytest.raises(ValidationError, match="Unknown field"):
        contact_update(contact=contact, data={"optin_sms": True}, actor=None, source=ConsentSource.API)


def test_consent_history_is_immutable(make_contact):
    contact = make_contact(opt_ins={"sms": True})
    event = ConsentEvent.objects.get(contact=contact)

    event.new_value = False
    with pytest.raises(ValueError, match="immutable"):
        event.save()
    with pytest.raises(ValueError, match="immutable"):
        event.delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_are_serialised_so_each_records_the_true_old_value():
    contact = Contact.objects.create(phone="+919876543210")
    barrier = threading.Barrier(4)
    errors = []

    def flip(value):
        try:
            barrier.wait()
            contact_set_opt_in(
                contact=Contact.objects.get(pk=contact.pk), channel="sms", value=value, source=ConsentSource.API
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flip, args=(v,)) for v in (True, False, True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    events = list(ConsentEvent.objects.filter(contact=contact).order_by("changed_at"))
    # Each event's old value is the previous event's new value: no change was lost or misrecorded.
    previous = False
    for event in events:
        assert event.old_value == previous
        assert event.new_value != previous
        previous = event.new_value
    contact.refresh_from_db()
    assert contact.opt_in_sms == previous
