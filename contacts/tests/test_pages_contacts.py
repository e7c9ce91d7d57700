"""The contact pages, through Django's test client: what each role sees and may do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditLog
from contacts.import_jobs import contact_import_job_run
from contacts.models import ConsentEvent, ConsentSource, Contact, ContactImportJob
from contacts.services import contact_set_opt_in

pytestmark = pytest.mark.django_db


def test_the_list_shows_active_contacts_newest_first_and_searches_by_any_phone_form(viewer_client, make_contact):
    make_contact(name="Asha Rao", phone="+919876543210")
    make_contact(name="Ravi Kumar", email="ravi@example.com")
    gone = make_contact(name="Gone Person", phone="+919812345678")
    Contact.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    everyone = viewer_client.get("/contacts/").content.decode()
    found = viewer_client.get("/contacts/", {"search": "98765 43210"}).content.decode()

    assert everyone.index("Ravi Kumar") < everyone.index("Asha Rao")
    assert "Gone Person" not in everyone
    assert "Asha Rao" in found and "Ravi Kumar" not in found
    assert "1 contact<" in found


def test_the_list_filters_by_opt_in_and_explains_a_bad_filter(viewer_client, make_contact):
    make_contact(name="Opted", phone="+919876543210", opt_ins={"whatsapp": True})
    make_contact(name="Silent", phone="+919876543211")

    opted = viewer_client.get("/contacts/", {"optInWhatsApp": "true"}).content.decode()
    silent = viewer_client.get("/contacts/", {"optInWhatsApp": "false"}).content.decode()
    bad = viewer_client.get("/contacts/", {"optInWhatsApp": "yes"}).content.decode()

    assert "Opted" in opted and "Silent" not in opted
    assert "Silent" in silent and ">Opted<" not in silent
    assert "Use true or false" in bad and "Silent" not in bad


def test_a_viewer_is_not_offered_changes_and_is_refused_if_they_force_one(viewer_client, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210")

    listing = viewer_client.get("/contacts/").content.decode()
    detail = viewer_client.get(f"/contacts/{contact.pk}/").content.decode()
    forced = viewer_client.post("/contacts/new/", {"name": "X", "phone": "+919876543299"})
    forced_delete = viewer_client.post(f"/contacts/{contact.pk}/delete/")

    assert "New contact" not in listing and "Import CSV" not in listing
    assert "Edit" not in detail and "Delete" not in detail
    assert forced.status_code == 403 and forced_delete.status_code == 403
    assert not Contact.objects.filter(phone="+919876543299").exists()
    assert Contact.objects.get(pk=contact.pk).deleted_at is None
    assert AuditLog.objects.filter(action="forbidden").count() == 2


def test_creating_a_contact_records_only_the_ticked_opt_ins_with_source_ui(operator_client):
    response = operator_client.post(
        "/contacts/new/", {"name": "Asha", "phone": "98765 43210", "email": "", "opt_in_whatsapp": "on"}
    )

    contact = Contact.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.phone == "+919876543210"
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (True, False, False)
    event = ConsentEvent.objects.get()
    assert (event.channel, event.old_value, event.new_value, event.source) == ("whatsapp", None, True, "ui")


def test_a_bad_contact_is_not_created_and_the_form_says_why(operator_client, make_contact):
    make_contact(phone="+919876543210")

    no_address = operator_client.post("/contacts/new/", {"name": "Nobody"})
    taken = operator_client.post("/contacts/new/", {"name": "Twin", "phone": "+91 98765 43210"})
    bad_phone = operator_client.post("/contacts/new/", {"name": "Typo", "phone": "12"})

    assert no_address.status_code == 200 and "needs a phone number or an email address" in no_address.content.decode()
    assert "Another contact already has this phone number." in taken.content.decode()
    assert 'class="field-error"' in bad_phone.content.decode()
    assert Contact.objects.count() == 1


def test_editing_changes_only_what_the_operator_changed(operator_client, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"sms": True})
    form = operator_client.get(f"/contacts/{contact.pk}/edit/").context["form"]
    data = {k: v for k, v in form.initial.items() if v not in (False, None)}
    data.update({"name": "Asha Rao", "opt_in_sms": "", "opt_in_email": "on"})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v != ""}

    response = operator_client.post(f"/contacts/{contact.pk}/edit/", data)

    contact.refresh_from_db()
    assert response.status_code == 302
    assert contact.name == "Asha Rao" and contact.phone == "+919876543210"
    assert (contact.opt_in_sms, contact.opt_in_email) == (False, True)
    changes = {(e.channel, e.new_value, e.source) for e in ConsentEvent.objects.filter(source=ConsentSource.UI)}
    assert changes == {("sms", False, "ui"), ("email", True, "ui")}


def edit_form_data(client, contact) -> dict:
    initial = client.get(f"/contacts/{contact.pk}/edit/").context["form"].initial
    return {k: ("on" if v is True else v) for k, v in initial.items() if v not in (False, None, "")}


def test_a_stale_opt_in_box_never_opts_a_contact_back_in(operator_client, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"whatsapp": True})
    data = edit_form_data(operator_client, contact)
    # While the page is open, the contact replies STOP.
    contact_set_opt_in(contact=contact, channel="whatsapp", value=False, source=ConsentSource.INBOUND_KEYWORD)

    operator_client.post(f"/contacts/{contact.pk}/edit/", {**data, "name": "Asha Rao"})

    contact.refresh_from_db()
    assert contact.name == "Asha Rao"
    assert contact.opt_in_whatsapp is False


def test_the_detail_shows_the_consent_history_and_the_whatsapp_window(viewer_client, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"whatsapp": True}, source=ConsentSource.UI)
    Contact.objects.filter(pk=contact.pk).update(last_inbound_message_at=timezone.now() - timedelta(hours=2))
    closed = make_contact(name="Quiet", phone="+919876543211")

    html = viewer_client.get(f"/contacts/{contact.pk}/").content.decode()
    closed_html = viewer_client.get(f"/contacts/{closed.pk}/").content.decode()

    assert 'data-testid="consent-history"' in html and "Operator pages" in html
    assert "free-form until" in html
    assert "template required" in closed_html and "they have never written" in closed_html


def test_deleting_is_soft_and_an_admin_can_restore(operator_client, admin_client_role, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210")

    deleted = operator_client.post(f"/contacts/{contact.pk}/delete/")
    hidden = operator_client.get(f"/contacts/{contact.pk}/")
    restored = admin_client_role.post(f"/contacts/{contact.pk}/restore/")

    assert deleted.status_code == 302 and deleted["Location"] == "/contacts/"
    assert hidden.status_code == 404
    assert restored.status_code == 302
    assert Contact.objects.get(pk=contact.pk).deleted_at is None
    assert operator_client.post(f"/contacts/{contact.pk}/restore/").status_code == 403


def test_the_csv_import_reports_every_row_and_keeps_the_good_ones(reset_aws, operator_client, make_contact):
    make_contact(phone="+919876543210")
    csv = (
        "name,phone,email,optInWhatsApp,optInSms,optInEmail\n"
        "Asha,+919811111111,,true,,\n"
        "Twin,+91 98765 43210,,,,\n"
        "Maybe,+919822222222,,yes,,\n"
        "Ravi,,ravi@example.com,,,\n"
    )
    upload = SimpleUploadedFile("contacts.csv", csv.encode(), content_type="text/csv")

    job_page = operator_client.post("/contacts/import/", {"file": upload})
    job = ContactImportJob.objects.get()
    contact_import_job_run(job_id=job.pk)  # what the worker does (test_import_job runs a real one)
    response = operator_client.get(job_page["Location"])

    html = response.content.decode()
    assert [bad["number"] for bad in response.context["bad_rows"]] == [2, 3]
    assert '<dd data-count="created">2</dd>' in html
    assert '<dd data-count="rejected">2</dd>' in html
    assert "Another contact already has this phone number." in html
    assert "&#x27;yes&#x27; is not a boolean" in html
    assert Contact.objects.filter(phone="+919811111111", opt_in_whatsapp=True).exists()
    assert ConsentEvent.objects.get(contact__phone="+919811111111").source == "import"


def test_a_csv_with_an_unknown_column_imports_nothing_and_says_which(reset_aws, operator_client):
    upload = SimpleUploadedFile("c.csv", b"name,phone,optinwhatsapp\nAsha,+919811111111,true\n")

    response = operator_client.post("/contacts/import/", {"file": upload})

    assert "Unknown column(s) &#x27;optinwhatsapp&#x27;" in response.content.decode()
    assert not Contact.objects.exists()
