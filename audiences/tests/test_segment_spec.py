"""Segment specs: checked on save, each condition selecting exactly whom it says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.selectors import segment_contacts
from audiences.spec import spec_clean
from contacts.attributes import contact_set_attributes, contacts_tag
from contacts.models import Contact

pytestmark = pytest.mark.django_db


def _members(raw: dict, now=None) -> set[str]:
    return {c.name for c in segment_contacts(spec_clean(raw), now=now)}


@pytest.fixture
def people(definitions, make_contact, operator):
    now = timezone.now()
    asha = make_contact(name="Asha", opt_ins={"whatsapp": True, "sms": True})
    ben = make_contact(name="Ben", email="ben@example.com", opt_ins={"email": True})
    chen = make_contact(name="Chen", opt_ins={"sms": True})
    dev = make_contact(name="Dev", email="dev@example.com", phone="+919811111111")
    values = {
        asha: {"city": "Pune", "visits": 12, "birthday": "1990-04-01", "vip": True, "plan": "pro"},
        ben: {"city": "Mumbai", "visits": 3, "birthday": "1975-12-31", "plan": "free"},
        chen: {"city": "Pimpri", "vip": False},
        dev: {},
    }
    for contact, attrs in values.items():
        contact_set_attributes(contact=contact, values=attrs, actor=operator, source="api")
    contacts_tag(contact_ids=[asha.pk, ben.pk], add=["vip"], actor=operator, source="api")
    contacts_tag(contact_ids=[asha.pk, chen.pk], add=["pune"], actor=operator, source="api")
    contacts_tag(contact_ids=[dev.pk], add=["churned"], actor=operator, source="api")
    Contact.objects.filter(pk=asha.pk).update(last_inbound_message_at=now - timedelta(hours=2))
    Contact.objects.filter(pk=ben.pk).update(last_inbound_message_at=now - timedelta(days=3))
    Contact.objects.filter(pk=dev.pk).update(created_at=now - timedelta(days=400))
    return now


def test_tags_any_all_and_none_select_as_named(people):
    assert _members({"tagsAny": ["vip", "churned"]}) == {"Asha", "Ben", "Dev"}
    assert _members({"tagsAll": ["vip", "pune"]}) == {"Asha"}
    assert _members({"tagsNone": ["vip"]}) == {"Chen", "Dev"}
    assert _members({"tagsAll": ["vip", "never-used"]}) == set()
    assert _members({"tagsAny": ["VIP"], "tagsNone": ["pune"]}) == {"Ben"}


def test_attribute_conditions_compare_by_the_attributes_type(people):
    assert _members({"attributes": [{"name": "city", "op": "equals", "value": "Pune"}]}) == {"Asha"}
    assert _members({"attributes": [{"name": "city", "op": "contains", "value": "p"}]}) == {"Asha", "Chen"}
    assert _members({"attributes": [{"name": "visits", "op": "after", "value": "5"}]}) == {"Asha"}
    assert _members({"attributes": [{"name": "visits", "op": "before", "value": 5}]}) == {"Ben"}
    assert _members({"attributes": [{"name": "birthday", "op": "before", "value": "1980-01-01"}]}) == {"Ben"}
    assert _members({"attributes": [{"name": "birthday", "op": "after", "value": "1980-01-01"}]}) == {"Asha"}
    assert _members({"attributes": [{"name": "vip", "op": "equals", "value": "no"}]}) == {"Chen"}
    assert _members({"attributes": [{"name": "plan", "op": "empty"}]}) == {"Chen", "Dev"}
    assert _members({"attributes": [{"name": "plan", "op": "notEmpty"}]}) == {"Asha", "Ben"}


def test_consent_addresses_inbound_window_and_creation_times(people):
    now = people
    assert _members({"consent": {"sms": True}}) == {"Asha", "Chen"}
    assert _members({"consent": {"whatsapp": False, "email": False}}) == {"Chen", "Dev"}
    assert _members({"hasAddress": ["email"]}) == {"Ben", "Dev"}
    assert _members({"hasAddress": ["whatsapp"]}) == {"Asha", "Chen", "Dev"}
    assert _members({"inWhatsAppWindow": True}, now) == {"Asha"}
    assert _members({"inWhatsAppWindow": False}, now) == {"Ben", "Chen", "Dev"}
    assert _members({"lastInboundAfter": "2d"}, now) == {"Asha"}
    assert _members({"lastInboundBefore": "1d"}, now) == {"Ben"}
    assert _members({"createdBefore": "30d"}, now) == {"Dev"}
    assert _members({"createdAfter": (now - timedelta(days=1)).date().isoformat()}, now) == {"Asha", "Ben", "Chen"}


def test_a_deleted_contact_is_never_a_member(people):
    Contact.objects.filter(name="Asha").update(deleted_at=timezone.now())
    assert "Asha" not in _members({})


def test_a_bad_spec_is_refused_with_every_problem_named(definitions):
    bad = {
        "tagsAny": "vip",
        "attributes": [{"name": "shoe", "op": "equals", "value": 1}, {"name": "visits", "op": "contains", "value": 1}],
        "consent": {"fax": True},
        "lastInboundAfter": "yesterday",
        "inWhatsAppWindow": "yes",
        "colour": "blue",
    }
    with pytest.raises(ValidationError) as caught:
        spec_clean(bad)
    errors = caught.value.message_dict
    assert set(errors) == {"spec", "tagsAny", "attributes", "consent", "lastInboundAfter", "inWhatsAppWindow"}
    assert len(errors["attributes"]) == 2
