from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditLog
from contacts.models import ConsentEvent, Contact
from contacts.services import contact_soft_delete

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/contacts/contact/"


def change_url(contact) -> str:
    return f"/admin/contacts/contact/{contact.pk}/change/"


def as_submitted(page, **fields) -> dict:
    """What a browser posts back from an admin change form: the inline management data and ids."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[management.add_prefix(name)] = management.initial.get(name, "")
        for form in formset.initial_forms:
            data[form.add_prefix("id")] = str(form.instance.pk)
            data[form.add_prefix(formset.fk.name)] = str(formset.instance.pk)
    data.update(fields)
    return data


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def user_for(make_user):
    return lambda role: make_user(role)


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Admin"])
def test_the_changelist_and_change_form_render_for_every_role(role, user_for, client_for, make_contact):
    contact = make_contact(name="José Álvarez", phone="+919876543210", opt_ins={"sms": True})
    client = client_for(user_for(role))

    listing = client.get(CHANGELIST)
    form = client.get(change_url(contact))
    history = client.get("/admin/contacts/consentevent/")

    assert listing.status_code == 200
    assert "José Álvarez" in listing.text and "+919876543210" in listing.text
    assert form.status_code == 200
    assert "Consent events" in form.text and "sms" in form.text
    assert history.status_code == 200
    can_edit = role != "Viewer"
    assert ('name="_save"' in form.text) is can_edit
    assert ("/admin/contacts/contact/add/" in listing.text) is can_edit
    assert ("/admin/contacts/contact/import/" in listing.text) is can_edit


def test_signed_out_visitors_are_sent_to_sign_in_and_users_without_a_role_are_refused(make_user, client_for):
    assert client_for(None).get(CHANGELIST).status_code == 302
    no_role = make_user(None)
    no_role.is_staff = True
    no_role.save()

    response = client_for(no_role).get(CHANGELIST)

    assert response.status_code == 403
    assert AuditLog.objects.filter(action="forbidden", user=no_role, details__path=CHANGELIST).exists()


def test_a_viewer_cannot_import_or_add_and_the_refusal_is_audited(viewer, client_for):
    client = client_for(viewer)

    assert client.get("/admin/contacts/contact/add/").status_code == 403
    assert client.get("/admin/contacts/contact/import/").status_code == 403
    assert AuditLog.objects.filter(action="forbidden", user=viewer).count() == 2


def test_the_list_hides_deleted_contacts_unless_the_deleted_filter_asks(operator, client_for, make_contact):
    make_contact(name="Still Here")
    gone = make_contact(name="Gone Away")
    contact_soft_delete(contact=gone, actor=None)
    client = client_for(operator)

    assert "Gone Away" not in client.get(CHANGELIST).text
    deleted = client.get(CHANGELIST, {"deleted": "yes"}).text
    assert "Gone Away" in deleted and "Still Here" not in deleted
    assert "Gone Away" in client.get(CHANGELIST, {"deleted": "all"}).text


def test_the_list_filters_by_opt_in(operator, client_for, make_contact):
    make_contact(name="Texts Welcome", opt_ins={"sms": True})
    make_contact(name="No Texts")

    text = client_for(operator).get(CHANGELIST, {"opt_in_sms__exact": "1"}).text

    assert "Texts Welcome" in text and "No Texts" not in text


@pytest.mark.parametrize("query", ["jose", "JOSÉ", "98765 43210", "+91 98765-43210"])
def test_admin_search_ignores_accents_case_and_phone_format(operator, client_for, make_contact, query):
    make_contact(name="José Álvarez", phone="+919876543210")
    make_contact(name="Someone Else")

    text = client_for(operator).get(CHANGELIST, {"q": query}).text

    assert "José Álvarez" in text and "Someone Else" not in text


def test_adding_a_contact_goes_through_the_services_with_source_admin(operator, client_for):
    response = client_for(operator).post(
        "/admin/contacts/contact/add/",
        {"name": "Asha", "phone": "98765 43210", "email": "Asha@Example.com", "opt_in_sms": "on"},
    )

    assert response.status_code == 302, response.content
    contact = Contact.objects.get()
    assert (contact.phone, contact.email, contact.opt_in_sms, contact.opt_in_whatsapp) == (
        "+919876543210",
        "asha@example.com",
        True,
        False,
    )
    event = ConsentEvent.objects.get(contact=contact)
    assert (event.channel, event.old_value, event.new_value, event.source, event.changed_by) == (
        "sms",
        None,
        True,
        "admin",
        operator,
    )
    assert AuditLog.objects.filter(action="contact.create", user=operator, details__source="admin").exists()


def test_changing_an_opt_in_in_the_admin_is_recorded_with_source_admin(operator, client_for, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"whatsapp": True})
    client = client_for(operator)
    page = client.get(change_url(contact))

    response = client.post(
        change_url(contact), as_submitted(page, name="Asha", phone="+91 98765 43210", email="", opt_in_sms="on")
    )

    assert response.status_code == 302, response.content
    contact.refresh_from_db()
    assert (contact.opt_in_whatsapp, contact.opt_in_sms) == (False, True)
    changes = set(ConsentEvent.objects.filter(contact=contact, source="admin").values_list("channel", "new_value"))
    assert changes == {("whatsapp", False), ("sms", True)}


def test_the_admin_form_shows_each_problem_on_its_field(operator, client_for, make_contact):
    make_contact(phone="+919876543210")
    client = client_for(operator)

    duplicate = client.post("/admin/contacts/contact/add/", {"name": "X", "phone": "098765 43210"})
    invalid = client.post("/admin/contacts/contact/add/", {"name": "X", "phone": "12345"})
    neither = client.post("/admin/contacts/contact/add/", {"name": "X"})

    assert duplicate.status_code == 200
    assert "Another contact already has this phone number." in duplicate.text
    assert "is not a valid phone number" in invalid.text
    assert "A contact needs a phone number or an email address." in neither.text
    assert Contact.objects.count() == 1


def test_the_delete_button_and_action_delete_softly(operator, client_for, make_contact):
    one, two = make_contact(name="One"), make_contact(name="Two")
    client = client_for(operator)

    response = client.post(f"/admin/contacts/contact/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = client.post(CHANGELIST, {"action": "soft_delete_selected", "_selected_action": [str(two.pk)]})
    assert response.status_code == 302

    assert Contact.objects.filter(deleted_at__isnull=False).count() == 2
    assert AuditLog.objects.filter(action="contact.delete", user=operator).count() == 2


def test_the_real_delete_action_is_not_offered(admin_role_user, client_for, make_contact):
    make_contact()

    text = client_for(admin_role_user).get(CHANGELIST).text

    assert 'value="delete_selected"' not in text
    assert "soft_delete_selected" in text


def test_only_an_admin_can_restore_from_the_admin(operator, admin_role_user, client_for, make_contact):
    contact = make_contact(name="Gone")
    contact_soft_delete(contact=contact, actor=None)
    data = {"action": "restore_selected", "_selected_action": [str(contact.pk)]}

    client_for(operator).post(f"{CHANGELIST}?deleted=yes", data)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert "restore_selected" not in client_for(operator).get(f"{CHANGELIST}?deleted=yes").text

    response = client_for(admin_role_user).post(f"{CHANGELIST}?deleted=yes", data)
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_restore_in_the_admin_explains_a_conflict(admin_role_user, client_for, make_contact):
    contact = make_contact(phone="+919876543210")
    contact_soft_delete(contact=contact, actor=None)
    make_contact(phone="+919876543210")

    response = client_for(admin_role_user).post(
        f"{CHANGELIST}?deleted=yes",
        {"action": "restore_selected", "_selected_action": [str(contact.pk)]},
        follow=True,
    )

    assert "now has the phone number +919876543210" in response.text
    contact.refresh_from_db()
    assert contact.deleted_at is not None


def test_the_export_action_downloads_the_selected_contacts_as_csv(operator, client_for, make_contact):
    chosen = make_contact(name="Chosen", phone="+919876543210", opt_ins={"email": True}, email="c@example.com")
    make_contact(name="Other")
    client = client_for(operator)

    page = client.post(CHANGELIST, {"action": "export_admin_action", "_selected_action": [str(chosen.pk)]})
    assert page.status_code == 200
    form = page.context["form"]
    data = {name: "on" for name in form.fields if name.startswith("contactresource_")}
    data.update({"format": "0", "resource": "0", "export_items": [str(chosen.pk)]})
    response = client.post("/admin/contacts/contact/export/", data)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("contactId,name,phone,email,optInWhatsApp,optInSms,optInEmail")
    assert len(lines) == 2 and "Chosen,+919876543210,c@example.com,false,false,true" in lines[1]


def test_admin_import_of_an_unknown_column_imports_nothing(reset_aws, operator, client_for):
    upload = SimpleUploadedFile("contacts.csv", b"name,mobile\nAsha,+919876543210\n", content_type="text/csv")

    response = client_for(operator).post("/admin/contacts/contact/import/", {"file": upload})

    assert response.status_code == 200
    assert "Unknown column(s) &#x27;mobile&#x27;" in response.text and "Nothing was imported." in response.text
    assert not Contact.objects.exists()


def test_the_consent_history_admin_is_read_only_even_for_admins(admin_role_user, client_for, make_contact):
    contact = make_contact(opt_ins={"sms": True})
    event = ConsentEvent.objects.get(contact=contact)
    client = client_for(admin_role_user)

    assert client.get("/admin/contacts/consentevent/add/").status_code == 403
    page = client.get(f"/admin/contacts/consentevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert client.post(f"/admin/contacts/consentevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.filter(pk=event.pk).exists()


def test_the_changelist_never_counts_every_contact(operator, client_for, make_contact):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        make_contact()

    with CaptureQueriesContext(connection) as queries:
        response = client_for(operator).get(CHANGELIST)

    assert response.status_code == 200 and "3 contacts" in response.text
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "contacts_contact" in q["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
