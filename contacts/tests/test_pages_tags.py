"""Tags on the contact pages: bulk add/remove from the list, filters by tag and attribute, the detail page."""

from __future__ import annotations

import pytest

from contacts.attributes import contact_set_attributes, contacts_tag
from contacts.models import AttributeDefinition, AttributeType, Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT)
    a = Contact.objects.create(name="Asha", phone="+919000000001")
    b = Contact.objects.create(name="Ben", phone="+919000000002")
    c = Contact.objects.create(name="Chen", phone="+919000000003")
    contact_set_attributes(contact=a, values={"city": "Pune"}, actor=None, source="ui")
    return a, b, c


def test_an_operator_tags_and_untags_the_ticked_contacts(operator_client, people):
    a, b, c = people
    response = operator_client.post(
        "/contacts/tags/",
        {"contact": [str(a.pk), str(b.pk)], "tags": "VIP, spring", "op": "add", "next": "/contacts/?search=a"},
    )
    assert response.status_code == 302 and response["Location"] == "/contacts/?search=a"
    assert sorted(a.tags.values_list("name", flat=True)) == ["spring", "vip"] and not c.tags.exists()

    operator_client.post(
        "/contacts/tags/", {"contact": [str(a.pk)], "tags": "spring", "op": "remove", "next": "https://evil.example/"}
    )
    assert list(a.tags.values_list("name", flat=True)) == ["vip"]

    page = operator_client.get("/contacts/?tag=vip").content.decode()
    assert "Asha" in page and "Ben" in page and "Chen" not in page
    assert 'data-testid="bulk-tags"' in page


def test_the_list_filters_by_attribute_and_explains_a_bad_filter(operator_client, people):
    page = operator_client.get("/contacts/?attribute=city:Pune").content.decode()
    assert "Asha" in page and "Ben" not in page
    bad = operator_client.get("/contacts/?attribute=shoe:9").content.decode()
    assert "no attribute" in bad


def test_a_viewer_sees_tags_but_cannot_change_them(viewer_client, people):
    a, _, _ = people
    contacts_tag(contact_ids=[a.pk], add=["vip"], actor=None, source="ui")

    page = viewer_client.get("/contacts/").content.decode()
    detail = viewer_client.get(f"/contacts/{a.pk}/").content.decode()

    assert 'data-testid="bulk-tags"' not in page and ">vip<" in page
    assert ">vip<" in detail and "Pune" in detail
    assert viewer_client.post("/contacts/tags/", {"contact": [str(a.pk)], "tags": "x", "op": "add"}).status_code == 403
    assert list(a.tags.values_list("name", flat=True)) == ["vip"]
