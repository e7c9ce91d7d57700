from __future__ import annotations

import pytest

from contacts.models import ConsentEvent, Contact
from contacts.services import contact_soft_delete

pytestmark = pytest.mark.django_db

FIELDS = {
    "contactId",
    "name",
    "phone",
    "email",
    "optInWhatsApp",
    "optInSms",
    "tags",
    "attributes",
    "optInEmail",
    "optInVoice",
    "optInRcs",
    "lastInboundMessageAt",
    "createdAt",
    "updatedAt",
    "deletedAt",
}


@pytest.fixture
def api(api_client_for, operator):
    return api_client_for(operator)


def test_create_answers_with_the_seeds_camel_case_names_and_normalised_values(api, operator):
    response = api.post(
        "/api/contacts/",
        {"name": "José", "phone": "98765 43210", "email": "Jose@Example.com", "optInSms": True},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["phone"] == "+919876543210"
    assert body["email"] == "jose@example.com"
    assert (body["optInWhatsApp"], body["optInSms"], body["optInEmail"]) == (False, True, False)
    assert body["deletedAt"] is None and body["lastInboundMessageAt"] is None
    event = ConsentEvent.objects.get(contact_id=body["contactId"])
    assert (event.channel, event.old_value, event.new_value, event.source, event.changed_by) == (
        "sms",
        None,
        True,
        "api",
        operator,
    )


def test_create_without_opt_ins_leaves_them_false(api):
    response = api.post("/api/contacts/", {"email": "a@example.com"}, format="json")

    assert response.status_code == 201
    assert [response.json()[k] for k in ("optInWhatsApp", "optInSms", "optInEmail")] == [False, False, False]
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize("value", ["yes", 1, "true", None, "1", 0])
def test_a_non_boolean_opt_in_is_refused_with_400_and_nothing_is_created(api, value):
    response = api.post("/api/contacts/", {"email": "a@example.com", "optInWhatsApp": value}, format="json")

    assert response.status_code == 400
    assert "Must be a JSON boolean" in response.json()["optInWhatsApp"][0]
    assert not Contact.objects.exists()


def test_create_reports_phone_or_email_and_field_errors_clearly(api):
    response = api.post("/api/contacts/", {"name": "Nobody"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["A contact needs a phone number or an email address."]}

    response = api.post("/api/contacts/", {"phone": "12345", "email": "nope"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"phone", "email"}
    assert "is not a valid phone number" in response.json()["phone"][0]


def test_create_refuses_a_duplicate_phone_per_field(api, make_contact):
    make_contact(phone="+919876543210")

    response = api.post("/api/contacts/", {"phone": "+91 98765 43210"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"phone": ["Another contact already has this phone number."]}


def test_an_unknown_field_is_refused_rather_than_ignored(api, make_contact):
    contact = make_contact()

    response = api.patch(f"/api/contacts/{contact.pk}/", {"optinSms": True}, format="json")

    assert response.status_code == 400
    assert "optinSms" in response.json()


def test_form_encoded_bodies_are_refused(api):
    response = api.post("/api/contacts/", {"email": "a@example.com", "optInSms": "true"})

    assert response.status_code == 415
    assert not Contact.objects.exists()


def test_patch_changes_only_the_named_opt_in_and_records_it(api, make_contact, operator):
    contact = make_contact(opt_ins={"whatsapp": True})

    response = api.patch(f"/api/contacts/{contact.pk}/", {"optInEmail": True, "name": "Asha"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["optInWhatsApp"], body["optInSms"], body["optInEmail"], body["name"]) == (True, False, True, "Asha")
    latest = ConsentEvent.objects.filter(contact=contact).order_by("-changed_at").first()
    assert (latest.channel, latest.old_value, latest.new_value, latest.source) == ("email", False, True, "api")


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_patch_with_a_non_boolean_opt_in_changes_nothing(api, make_contact, value):
    contact = make_contact(name="Asha")

    response = api.patch(f"/api/contacts/{contact.pk}/", {"name": "Changed", "optInSms": value}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["optInSms"]
    contact.refresh_from_db()
    assert (contact.name, contact.opt_in_sms) == ("Asha", False)
    assert not ConsentEvent.objects.filter(contact=contact).exists()


def test_put_is_not_offered(api, make_contact):
    contact = make_contact()

    response = api.put(f"/api/contacts/{contact.pk}/", {"name": "X"}, format="json")

    assert response.status_code == 405


def test_delete_is_soft_and_the_contact_then_answers_404(api, make_contact):
    contact = make_contact(name="Asha")

    response = api.delete(f"/api/contacts/{contact.pk}/")

    assert response.status_code == 204
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert api.get(f"/api/contacts/{contact.pk}/").status_code == 404
    assert api.patch(f"/api/contacts/{contact.pk}/", {"name": "X"}, format="json").status_code == 404
    assert api.get(f"/api/contacts/{contact.pk}/consent-history").status_code == 404
    assert api.get("/api/contacts/", {"search": "asha"}).json()["count"] == 0


def test_list_is_paginated_newest_first_and_leaves_out_deleted_contacts(api, make_contact):
    first = make_contact(name="First")
    second = make_contact(name="Second")
    gone = make_contact(name="Gone")
    contact_soft_delete(contact=gone, actor=None)

    body = api.get("/api/contacts/").json()

    assert body["count"] == 2
    assert [c["contactId"] for c in body["results"]] == [str(second.pk), str(first.pk)]
    assert {"next", "previous"} <= set(body)


def test_list_search_finds_by_accent_free_name_and_any_phone_form(api, make_contact):
    jose = make_contact(name="José", phone="+919876543210")
    make_contact(name="Someone Else")

    for query in ("jose", "JOSÉ", "98765 43210", "+91 98765-43210", "0091 98765 43210"):
        body = api.get("/api/contacts/", {"search": query}).json()
        assert [c["contactId"] for c in body["results"]] == [str(jose.pk)], query


def test_list_filters_by_opt_in(api, make_contact):
    sms = make_contact(name="Sms", opt_ins={"sms": True})
    both = make_contact(name="Both", opt_ins={"sms": True, "whatsapp": True})
    none = make_contact(name="None")

    def ids(params):
        return {c["contactId"] for c in api.get("/api/contacts/", params).json()["results"]}

    assert ids({"optInSms": "true"}) == {str(sms.pk), str(both.pk)}
    assert ids({"optInSms": "false"}) == {str(none.pk)}
    assert ids({"optInSms": "true", "optInWhatsApp": "true"}) == {str(both.pk)}
    assert ids({"optInEmail": "true"}) == set()


def test_a_filter_value_that_is_not_true_or_false_is_a_400_not_ignored(api, make_contact):
    make_contact()

    response = api.get("/api/contacts/", {"optInSms": "yes"})

    assert response.status_code == 400
    assert "Use true or false" in response.json()["optInSms"][0]


def test_consent_history_lists_every_change_newest_first(api, make_contact):
    contact = make_contact(opt_ins={"sms": True})
    api.patch(f"/api/contacts/{contact.pk}/", {"optInSms": False}, format="json")

    response = api.get(f"/api/contacts/{contact.pk}/consent-history")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(e["channel"], e["oldValue"], e["newValue"], e["source"]) for e in results] == [
        ("sms", True, False, "api"),
        ("sms", None, True, "api"),
    ]
    assert set(results[0]) == {
        "eventId",
        "contactId",
        "channel",
        "oldValue",
        "newValue",
        "changedBy",
        "source",
        "changedAt",
        "proof",
    }
    assert results[0]["proof"] == {}  # evidence only where a source keeps some (a form)


def test_an_admin_restores_a_deleted_contact(api_client_for, admin_role_user, make_contact):
    contact = make_contact(name="Asha")
    contact_soft_delete(contact=contact, actor=None)

    response = api_client_for(admin_role_user).post(f"/api/contacts/{contact.pk}/restore")

    assert response.status_code == 200
    assert response.json()["deletedAt"] is None
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_restore_explains_why_it_cannot(api_client_for, admin_role_user, make_contact):
    contact = make_contact(phone="+919876543210")
    contact_soft_delete(contact=contact, actor=None)
    make_contact(phone="+919876543210")
    client = api_client_for(admin_role_user)

    response = client.post(f"/api/contacts/{contact.pk}/restore")
    assert response.status_code == 400
    assert "now has the phone number +919876543210" in response.json()["phone"][0]

    not_deleted = make_contact()
    response = client.post(f"/api/contacts/{not_deleted.pk}/restore")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This contact is not deleted."]}


def test_an_unknown_contact_id_is_404(api):
    assert api.get("/api/contacts/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.get("/api/contacts/not-a-uuid/").status_code == 404


def test_search_results_come_in_name_order(api, make_contact):
    make_contact(name="Zoë Kumar")
    make_contact(name="Álvaro Kumar")
    make_contact(name="bina kumar")

    body = api.get("/api/contacts/", {"search": "kumar"}).json()

    assert [c["name"] for c in body["results"]] == ["Álvaro Kumar", "bina kumar", "Zoë Kumar"]
