"""Tags and attributes in the admin: the contact form, the bulk tag actions, tags and definitions."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditLog
from contacts.attributes import contacts_tag
from contacts.models import AttributeDefinition, AttributeType, Contact, Tag
from contacts.tests.test_admin import as_submitted, change_url

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_contact_form_sets_tags_and_checked_attributes(operator, make_contact):
    AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER)
    contact = make_contact(name="Asha", phone="+919876543210")
    client = _client(operator)
    page = client.get(change_url(contact))
    base = {"name": "Asha", "phone": "+919876543210", "email": ""}

    bad = client.post(
        change_url(contact), as_submitted(page, **base, tag_names="vip", attribute_values='{"visits": "x"}')
    )
    assert bad.status_code == 200 and "is not a number" in bad.content.decode()

    good = client.post(
        change_url(contact), as_submitted(page, **base, tag_names="vip, Pune", attribute_values='{"visits": "3"}')
    )
    assert good.status_code == 302, good.content
    contact.refresh_from_db()
    assert contact.attributes == {"visits": 3}
    assert sorted(contact.tags.values_list("name", flat=True)) == ["pune", "vip"]


def test_selected_contacts_are_tagged_and_untagged_by_an_action(operator, make_contact):
    first, second = make_contact(name="A"), make_contact(name="B")
    client = _client(operator)
    ids = [str(first.pk), str(second.pk)]

    client.post(
        "/admin/contacts/contact/", {"action": "add_tags_selected", "_selected_action": ids, "tags": "vip, new"}
    )
    assert set(Tag.objects.values_list("name", flat=True)) == {"vip", "new"}
    assert first.tags.count() == 2 and second.tags.count() == 2

    client.post(
        "/admin/contacts/contact/", {"action": "remove_tags_selected", "_selected_action": ids[:1], "tags": "new"}
    )
    assert list(first.tags.values_list("name", flat=True)) == ["vip"] and second.tags.count() == 2


def test_deleting_a_tag_removes_it_from_contacts(admin_role_user, make_contact):
    contact = make_contact(name="A")
    contacts_tag(contact_ids=[contact.pk], add=["gone"], actor=None, source="admin")
    tag = Tag.objects.get()

    response = _client(admin_role_user).post(f"/admin/contacts/tag/{tag.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Tag.objects.exists() and Contact.objects.get().tag_ids == []
    assert AuditLog.objects.filter(action="tag.delete").exists()


def test_an_admin_declares_an_attribute_and_cannot_change_its_type_later(admin_role_user, operator):
    client = _client(admin_role_user)
    add = "/admin/contacts/attributedefinition/add/"
    assert _client(operator).get(add).status_code == 403

    client.post(add, {"name": "plan", "label": "Plan", "type": "choice", "choices": '["free", "pro"]'})

    definition = AttributeDefinition.objects.get()
    assert definition.choices == ["free", "pro"]
    page = client.get(f"/admin/contacts/attributedefinition/{definition.pk}/change/").content.decode()
    assert 'name="type"' not in page
    no_choices = client.post(add, {"name": "tier", "type": "choice", "choices": "[]"})
    assert no_choices.status_code == 200 and AttributeDefinition.objects.count() == 1
