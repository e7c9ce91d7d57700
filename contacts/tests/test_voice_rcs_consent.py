"""Voice and RCS consent: false by default, changed with a consent history like every channel, in the
API (optInVoice, optInRcs), the pages, the admin and the CSV import/export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from contacts.models import ConsentEvent, Contact

pytestmark = pytest.mark.django_db


def test_voice_and_rcs_are_off_until_given_and_each_change_is_in_the_history(api_client_for, operator):
    api = api_client_for(operator)

    created = api.post("/api/contacts/", {"name": "Asha", "phone": "+919876543210"}, format="json").json()
    assert (created["optInVoice"], created["optInRcs"]) == (False, False)

    response = api.patch(
        f"/api/contacts/{created['contactId']}/", {"optInVoice": True, "optInRcs": True}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["optInVoice"], response.json()["optInRcs"]) == (True, True)
    events = {e.channel: e for e in ConsentEvent.objects.filter(contact_id=created["contactId"])}
    assert set(events) == {"voice", "rcs"}
    assert all(
        (e.old_value, e.new_value, e.source, e.changed_by) == (False, True, "api", operator) for e in events.values()
    )
    history = api.get(f"/api/contacts/{created['contactId']}/consent-history/").json()
    assert {row["channel"] for row in history["results"]} == {"voice", "rcs"}


def test_the_api_filters_by_voice_and_rcs_consent_and_refuses_a_non_boolean(api_client_for, operator):
    api = api_client_for(operator)
    api.post("/api/contacts/", {"phone": "+919876543210", "optInVoice": True}, format="json")
    api.post("/api/contacts/", {"phone": "+919876543211", "optInRcs": True}, format="json")

    voice = api.get("/api/contacts/?optInVoice=true").json()["results"]
    rcs = api.get("/api/contacts/?optInRcs=true").json()["results"]
    bad = api.post("/api/contacts/", {"phone": "+919876543212", "optInVoice": "yes"}, format="json")

    assert [c["phone"] for c in voice] == ["+919876543210"]
    assert [c["phone"] for c in rcs] == ["+919876543211"]
    assert bad.status_code == 400 and "optInVoice" in bad.json()


def test_the_csv_import_reads_and_the_export_writes_the_voice_and_rcs_columns(tmp_path, operator):
    source = tmp_path / "in.csv"
    source.write_text("name,phone,optInVoice,optInRcs\nAsha,+919876543210,true,\nRavi,+919876543211,,TRUE\n")

    call_command("import_contacts", str(source), "--as", operator.email, stdout=io.StringIO(), stderr=io.StringIO())

    asha, ravi = Contact.objects.get(name="Asha"), Contact.objects.get(name="Ravi")
    assert (asha.opt_in_voice, asha.opt_in_rcs, ravi.opt_in_voice, ravi.opt_in_rcs) == (True, False, False, True)
    assert {(e.contact.name, e.channel, e.source) for e in ConsentEvent.objects.select_related("contact")} == {
        ("Asha", "voice", "import"),
        ("Ravi", "rcs", "import"),
    }
    out = tmp_path / "out.csv"
    call_command("export_contacts", str(out), stderr=io.StringIO())
    rows = {r["name"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert (rows["Asha"]["optInVoice"], rows["Asha"]["optInRcs"]) == ("true", "false")
    assert (rows["Ravi"]["optInVoice"], rows["Ravi"]["optInRcs"]) == ("false", "true")


def test_the_contact_page_edits_voice_and_rcs_consent_with_the_history(client, operator):
    contact = Contact.objects.create(name="Asha", phone="+919876543210")
    client.force_login(operator)

    page = client.get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert 'name="opt_in_voice"' in page and 'name="opt_in_rcs"' in page
    response = client.post(
        f"/contacts/{contact.pk}/edit/",
        {"name": "Asha", "phone": "+919876543210", "opt_in_voice": "on", "shown_name": "Asha",
         "shown_phone": "+919876543210", "shown_email": "", "shown_opt_in_whatsapp": "false",
         "shown_opt_in_sms": "false", "shown_opt_in_email": "false", "shown_opt_in_voice": "false",
         "shown_opt_in_rcs": "false"},
    )  # fmt: skip

    assert response.status_code in (200, 302)
    contact.refresh_from_db()
    assert (contact.opt_in_voice, contact.opt_in_rcs) == (True, False)
    assert ConsentEvent.objects.get(contact=contact).source == "ui"
    detail = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Voice ✓" in detail and "RCS ✗" in detail


def test_the_admin_shows_and_changes_voice_and_rcs_consent(client, admin_role_user):
    contact = Contact.objects.create(name="Asha", phone="+919876543210")
    client.force_login(admin_role_user)

    page = client.get(f"/admin/contacts/contact/{contact.pk}/change/").content.decode()

    assert 'name="opt_in_voice"' in page and 'name="opt_in_rcs"' in page
