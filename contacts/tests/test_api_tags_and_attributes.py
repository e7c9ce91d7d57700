"""Tags and attributes through /api/contacts/, /api/tags/ and /api/attributes/."""

from __future__ import annotations

import pytest

from contacts.models import AttributeDefinition, AttributeType, Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def city(db):
    AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT)
    AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER)


def test_a_contact_is_created_with_tags_and_typed_attributes(operator, api_client_for, city):
    body = {
        "name": "Asha",
        "phone": "+919876543210",
        "tags": ["VIP", "pune"],
        "attributes": {"city": "Pune", "visits": "4"},
    }

    response = api_client_for(operator).post("/api/contacts/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["tags"] == ["pune", "vip"]
    assert response.json()["attributes"] == {"city": "Pune", "visits": 4}


def test_a_bad_attribute_refuses_the_whole_create(operator, api_client_for, city):
    body = {"name": "Asha", "phone": "+919876543210", "attributes": {"visits": "lots", "shoe": 9}}

    response = api_client_for(operator).post("/api/contacts/", body, format="json")

    assert response.status_code == 400
    assert len(response.json()["attributes"]) == 2
    assert not Contact.objects.exists()


def test_patch_changes_only_the_named_attributes_and_sets_the_tags(operator, api_client_for, make_contact, city):
    contact = make_contact(name="Asha")
    client = api_client_for(operator)
    client.patch(f"/api/contacts/{contact.pk}/", {"attributes": {"city": "Pune", "visits": 2}, "tags": ["a"]},
                 format="json")  # fmt: skip

    response = client.patch(f"/api/contacts/{contact.pk}/", {"attributes": {"visits": None}, "tags": ["b"]},
                            format="json")  # fmt: skip

    assert response.status_code == 200, response.json()
    assert response.json()["attributes"] == {"city": "Pune"} and response.json()["tags"] == ["b"]


def test_contacts_are_tagged_in_bulk_and_found_by_tag_and_attribute(
    operator, viewer, api_client_for, make_contact, city
):
    first, second, third = make_contact(name="A"), make_contact(name="B"), make_contact(name="C")
    client = api_client_for(operator)
    client.patch(f"/api/contacts/{first.pk}/", {"attributes": {"city": "Pune"}}, format="json")

    tagged = client.post("/api/contacts/tags", {"contactIds": [str(first.pk), str(second.pk)], "add": ["vip"]},
                         format="json")  # fmt: skip

    assert tagged.status_code == 200 and tagged.json() == {"contacts": 2, "added": 2, "removed": 0}
    reader = api_client_for(viewer)
    assert {c["name"] for c in reader.get("/api/contacts/?tag=vip").json()["results"]} == {"A", "B"}
    assert [c["name"] for c in reader.get("/api/contacts/?attribute=city:Pune").json()["results"]] == ["A"]
    assert reader.get("/api/contacts/?attribute=shoe:9").status_code == 400
    assert [t["name"] for t in reader.get("/api/tags/").json()] == ["vip"]
    assert reader.post("/api/contacts/tags", {"contactIds": [str(third.pk)], "add": ["x"]}, format="json"
                       ).status_code == 403  # fmt: skip


def test_only_an_admin_declares_attributes(operator, admin_role_user, viewer, api_client_for):
    body = {"name": "plan", "type": "choice", "choices": ["free", "pro"]}
    assert api_client_for(operator).post("/api/attributes/", body, format="json").status_code == 403

    created = api_client_for(admin_role_user).post("/api/attributes/", body, format="json")

    assert created.status_code == 201, created.json()
    bad = api_client_for(admin_role_user).post("/api/attributes/", {"name": "tier", "type": "choice"}, format="json")
    assert bad.status_code == 400
    assert [a["name"] for a in api_client_for(viewer).get("/api/attributes/").json()] == ["plan"]
