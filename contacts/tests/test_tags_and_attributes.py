from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditLog
from contacts.attributes import contact_set_attributes, contact_set_tags, contacts_tag, tag_delete
from contacts.models import AttributeDefinition, AttributeType, ContactTag, Tag


@pytest.fixture
def definitions(db):
    AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT)
    AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER)
    AttributeDefinition.objects.create(name="birthday", type=AttributeType.DATE)
    AttributeDefinition.objects.create(name="vip", type=AttributeType.BOOLEAN)
    AttributeDefinition.objects.create(name="plan", type=AttributeType.CHOICE, choices=["free", "pro"])


def test_attribute_values_are_stored_in_their_typed_form(definitions, make_contact, operator):
    contact = make_contact(name="Asha")
    values = {"city": "  Pune ", "visits": "12", "birthday": "1990-04-01", "vip": "yes", "plan": "pro"}
    contact_set_attributes(contact=contact, values=values, actor=operator, source="api")
    contact.refresh_from_db()
    assert contact.attributes == {"city": "Pune", "visits": 12, "birthday": "1990-04-01", "vip": True, "plan": "pro"}
    assert AuditLog.objects.filter(action="contact.attributes", details__changed__contains=["city"]).exists()


def test_every_bad_attribute_value_is_refused_at_once_and_nothing_changes(definitions, make_contact, operator):
    contact = make_contact(name="Asha")
    contact_set_attributes(contact=contact, values={"city": "Pune"}, actor=operator, source="api")
    bad = {"visits": "many", "birthday": "1/4/90", "vip": "perhaps", "plan": "gold", "shoe": "42", "city": "Goa"}
    with pytest.raises(ValidationError) as caught:
        contact_set_attributes(contact=contact, values=bad, actor=operator, source="api")
    messages = caught.value.message_dict["attributes"]
    assert len(messages) == 5
    assert any("shoe: no such attribute" in m for m in messages)
    contact.refresh_from_db()
    assert contact.attributes == {"city": "Pune"}


def test_an_empty_value_removes_the_attribute(definitions, make_contact, operator):
    contact = make_contact(name="Asha")
    contact_set_attributes(contact=contact, values={"city": "Pune", "visits": 3}, actor=operator, source="api")
    contact_set_attributes(contact=contact, values={"city": ""}, actor=operator, source="api")
    contact.refresh_from_db()
    assert contact.attributes == {"visits": 3}


def test_a_choice_attribute_needs_its_choices(db):
    with pytest.raises(ValidationError):
        AttributeDefinition(name="plan", type=AttributeType.CHOICE, choices=[]).full_clean()
    with pytest.raises(ValidationError):
        AttributeDefinition(name="Bad Name", type=AttributeType.TEXT).full_clean()


def test_tags_are_added_and_removed_in_bulk_case_insensitively(make_contact, operator):
    first, second = make_contact(name="A"), make_contact(name="B")
    result = contacts_tag(contact_ids=[first.pk, second.pk], add=["VIP", "pune"], actor=operator, source="ui")
    assert result == {"contacts": 2, "added": 4, "removed": 0}
    again = contacts_tag(contact_ids=[first.pk, second.pk], add=["vip"], actor=operator, source="ui")
    assert again["added"] == 0
    assert Tag.objects.filter(name="vip").count() == 1
    removed = contacts_tag(contact_ids=[first.pk], remove=["Pune"], actor=operator, source="ui")
    assert removed["removed"] == 1
    assert sorted(first.tags.values_list("name", flat=True)) == ["vip"]
    assert sorted(second.tags.values_list("name", flat=True)) == ["pune", "vip"]


def test_a_tag_name_with_odd_characters_is_refused(make_contact, operator):
    contact = make_contact(name="A")
    with pytest.raises(ValidationError):
        contacts_tag(contact_ids=[contact.pk], add=["=cmd|'/c calc'!A0"], actor=operator, source="ui")
    assert not ContactTag.objects.exists()


def test_setting_tags_makes_them_exactly_the_given_list(make_contact, operator):
    contact = make_contact(name="A")
    contact_set_tags(contact=contact, names="a, b", actor=operator, source="api")
    contact_set_tags(contact=contact, names=["b", "c"], actor=operator, source="api")
    assert sorted(contact.tags.values_list("name", flat=True)) == ["b", "c"]


def test_the_contacts_tag_ids_copy_follows_every_tag_change(make_contact, operator):
    first, second = make_contact(name="A"), make_contact(name="B")
    contacts_tag(contact_ids=[first.pk, second.pk], add=["x", "y"], actor=operator, source="ui")
    contacts_tag(contact_ids=[first.pk], remove=["x"], actor=operator, source="ui")
    x, y = Tag.objects.get(name="x"), Tag.objects.get(name="y")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.tag_ids == [y.pk] and second.tag_ids == sorted([x.pk, y.pk])

    assert tag_delete(tag=y, actor=operator) == 2

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.tag_ids == [] and second.tag_ids == [x.pk]
    assert AuditLog.objects.filter(action="tag.delete", resource_id="y").exists()
