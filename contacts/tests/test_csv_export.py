from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from contacts.models import ConsentEvent, Contact
from contacts.services import contact_soft_delete

pytestmark = pytest.mark.django_db


def test_export_writes_every_active_contact_in_the_import_format(tmp_path, make_contact):
    make_contact(name="José", phone="+919876543210", email="jose@example.com", opt_ins={"sms": True})
    gone = make_contact(name="Gone")
    contact_soft_delete(contact=gone, actor=None)
    path = tmp_path / "out.csv"

    call_command("export_contacts", str(path), stderr=io.StringIO())

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "contactId",
        "name",
        "phone",
        "email",
        "optInWhatsApp",
        "optInSms",
        "optInEmail",
        "optInVoice",
        "optInRcs",
        "lastInboundMessageAt",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "tags",
    ]
    assert [(r["name"], r["phone"], r["optInWhatsApp"], r["optInSms"]) for r in rows] == [
        ("José", "+919876543210", "false", "true")
    ]


def test_deleted_contacts_are_exported_only_when_asked(tmp_path, make_contact):
    gone = make_contact(name="Gone")
    contact_soft_delete(contact=gone, actor=None)
    path = tmp_path / "out.csv"

    call_command("export_contacts", str(path), "--include-deleted", stderr=io.StringIO())

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["name"] for r in rows] == ["Gone"]
    assert rows[0]["deletedAt"]


def test_an_export_imports_back_without_changing_anything(tmp_path, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210", opt_ins={"whatsapp": True})
    path = tmp_path / "out.csv"
    call_command("export_contacts", str(path), stderr=io.StringIO())
    events_before = ConsentEvent.objects.count()

    out = io.StringIO()
    call_command("import_contacts", str(path), stdout=out, stderr=io.StringIO())

    assert "0 contact(s) were created, 0 updated, 0 rejected. 1 row(s) matched their contact already." in out.getvalue()
    assert Contact.objects.count() == 1
    contact.refresh_from_db()
    assert (contact.name, contact.opt_in_whatsapp) == ("Asha", True)
    assert ConsentEvent.objects.count() == events_before


def test_export_cells_are_safe_to_open_in_a_spreadsheet(tmp_path, make_contact):
    make_contact(name='=HYPERLINK("http://evil")', phone="+919876543210")
    path = tmp_path / "out.csv"

    call_command("export_contacts", str(path), stderr=io.StringIO())

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows[0]["name"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["phone"] == "+919876543210"  # E.164 digits: no formula, and it must import back


def test_the_database_written_csv_matches_the_python_rows_cell_for_cell(make_contact):
    from django.utils import timezone

    from contacts.exporting import contacts_export_csv, contacts_export_rows

    make_contact(name="@SUM(A1)", email="-x@example.com", opt_ins={"sms": True})
    touched = make_contact(name='José "Pepe", Álvarez', phone="+919876543210")
    Contact.objects.filter(pk=touched.pk).update(last_inbound_message_at=timezone.now())
    gone = make_contact(name="Gone")
    contact_soft_delete(contact=gone, actor=None)

    written = list(csv.reader(io.StringIO("".join(contacts_export_csv(Contact.objects.all())))))
    expected = [list(row) for row in contacts_export_rows(Contact.objects.all())]

    assert written == expected
    assert written[1][1] == "'@SUM(A1)" and written[1][3] == "'-x@example.com"
