from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from contacts.models import ConsentEvent, Contact
from wecare.tests.sqlite_rerun import rerun_on_sqlite

pytestmark = pytest.mark.django_db

HEADER = "name,phone,email,optInWhatsApp,optInSms,optInEmail\n"


def write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_import(path, *args) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_contacts", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_good_rows_are_imported_with_normalised_values_and_no_opt_in_unless_given(tmp_path):
    path = write(
        tmp_path,
        HEADER + "José,98765 43210,Jose@Example.com,,,\nAsha,,asha@example.com,,,\n",
    )

    out, _, error = run_import(path)

    assert error is None, out
    assert "2 row(s) read: 2 contact(s) were created, 0 updated, 0 rejected." in out
    jose = Contact.objects.get(phone="+919876543210")
    assert (jose.name, jose.email) == ("José", "jose@example.com")
    assert (jose.opt_in_whatsapp, jose.opt_in_sms, jose.opt_in_email) == (False, False, False)
    assert not ConsentEvent.objects.exists()


def test_imported_opt_ins_are_recorded_with_source_import(tmp_path, operator):
    path = write(tmp_path, HEADER + "Asha,+919876543210,,TRUE,false,\n")

    _, _, error = run_import(path, "--as", operator.email)

    assert error is None
    contact = Contact.objects.get(phone="+919876543210")
    assert (contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (True, False, False)
    events = {e.channel: e for e in ConsentEvent.objects.filter(contact=contact)}
    assert set(events) == {"whatsapp", "sms"}
    assert (events["whatsapp"].old_value, events["whatsapp"].new_value) == (None, True)
    assert {e.source for e in events.values()} == {"import"}
    assert events["whatsapp"].changed_by == operator


def test_bad_rows_are_reported_by_number_with_the_reason_and_good_rows_are_kept(tmp_path):
    path = write(
        tmp_path,
        HEADER
        + "Good One,+919876543210,,true,,\n"  # row 1
        + "No Way To Reach,,,true,,\n"  # row 2: neither phone nor email
        + "Bad Phone,12345,,,,\n"  # row 3: invalid phone
        + "Duplicate,098765 43210,,,,\n"  # row 4: same phone as row 1
        + "Bad Bool,+919876543211,,yes,,\n"  # row 5: not a boolean
        + "Good Two,,two@example.com,,,1\n"  # row 6: 1 is not a boolean either
        + "Good Three,,three@example.com,,true,\n",  # row 7
    )

    out, _, error = run_import(path)

    assert error is not None and "5 row(s) rejected" in str(error)
    lines = out.splitlines()
    assert lines[0] == "row 2 (line 3): A contact needs a phone number or an email address."
    assert lines[1].startswith("row 3 (line 4): phone: '12345' is not a valid phone number")
    assert lines[2] == "row 4 (line 5): phone: Duplicate: row 1 of this file already has this phone."
    assert lines[3] == (
        "row 5 (line 6): optInWhatsApp: 'yes' is not a boolean: write true or false, or leave the cell empty."
    )
    assert lines[4].startswith("row 6 (line 7): optInEmail: '1' is not a boolean")
    assert "7 row(s) read: 2 contact(s) were created, 0 updated, 5 rejected." in out
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Good One", "Good Three"]
    assert not Contact.objects.filter(name__in=["No Way To Reach", "Bad Phone", "Duplicate", "Bad Bool"]).exists()
    assert set(ConsentEvent.objects.values_list("contact__name", "channel", "source")) == {
        ("Good One", "whatsapp", "import"),
        ("Good Three", "sms", "import"),
    }


def test_a_row_duplicating_an_existing_contact_is_rejected(tmp_path, make_contact):
    make_contact(email="asha@example.com")
    path = write(tmp_path, HEADER + "Asha,,ASHA@example.com,,,\n")

    out, _, error = run_import(path)

    assert error is not None
    assert "row 1 (line 2): email: Another contact already has this email address." in out
    assert Contact.objects.count() == 1


def test_a_row_with_too_many_cells_is_reported_not_cut_down(tmp_path):
    path = write(tmp_path, HEADER + "Rao, Asha,+919876543210,,,,\nGood,+919876543211,,,,\n")

    out, _, error = run_import(path)

    assert error is not None
    assert "row 1 (line 2): The row has 7 cells but the header names 6 columns" in out
    assert list(Contact.objects.values_list("name", flat=True)) == ["Good"]


def test_a_row_with_contact_id_updates_that_contact_and_records_opt_in_changes(tmp_path, make_contact):
    contact = make_contact(name="Asha", phone="+919876543210")
    path = write(tmp_path, f"contactId,name,optInSms\n{contact.pk},Asha Rao,true\n")

    out, _, error = run_import(path)

    assert error is None, out
    assert "0 contact(s) were created, 1 updated" in out
    contact.refresh_from_db()
    assert (contact.name, contact.phone, contact.opt_in_sms) == ("Asha Rao", "+919876543210", True)
    event = ConsentEvent.objects.get(contact=contact)
    assert (event.old_value, event.new_value, event.source) == (False, True, "import")


def test_an_unknown_or_deleted_contact_id_is_a_bad_row(tmp_path):
    path = write(tmp_path, "contactId,name\n00000000-0000-0000-0000-000000000000,X\nnot-a-uuid,Y\n")

    out, _, error = run_import(path)

    assert error is not None
    assert "row 1 (line 2): contactId: No contact with contactId 00000000-0000-0000-0000-000000000000" in out
    assert "row 2 (line 3): contactId: 'not-a-uuid' is not a contactId (a UUID)." in out


def test_an_unknown_column_stops_the_whole_file_before_anything_is_imported(tmp_path):
    path = write(tmp_path, "name,phone,opt_in_sms\nAsha,+919876543210,true\n")

    _, _, error = run_import(path)

    assert error is not None
    assert "Unknown column(s) 'opt_in_sms'" in str(error)
    assert "Nothing was imported" in str(error)
    assert not Contact.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_clearly(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,phone\nJosé,+919876543210\n".encode("latin-1"))

    _, _, error = run_import(path)

    assert error is not None and "is not a CSV text file" in str(error) and "Nothing was imported" in str(error)


def test_a_missing_file_is_refused_clearly(tmp_path):
    _, _, error = run_import(tmp_path / "nope.csv")

    assert error is not None and "Cannot read" in str(error)


def test_a_dry_run_reports_everything_and_changes_nothing(tmp_path):
    path = write(tmp_path, HEADER + "Asha,+919876543210,,true,,\nBad,,,,,\n")

    out, _, error = run_import(path, "--dry-run")

    assert error is not None
    assert "row 2 (line 3): A contact needs a phone number or an email address." in out
    assert "1 contact(s) would be created" in out
    assert not Contact.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_a_file_with_a_byte_order_mark_and_export_only_columns_imports(tmp_path):
    path = tmp_path / "excel.csv"
    header = "\ufeffcontactId,name,phone,email,optInWhatsApp,optInSms,optInEmail,createdAt\n"
    path.write_bytes((header + ",Asha,+919876543210,,,,,2024-01-01\n").encode())

    out, _, error = run_import(path)

    assert error is None, out
    assert Contact.objects.get().name == "Asha"


def test_the_command_shows_a_progress_bar(tmp_path, capsys):
    path = write(tmp_path, HEADER + "Asha,+919876543210,,,,\n")

    call_command("import_contacts", str(path), stdout=io.StringIO())

    progress = capsys.readouterr().err
    assert "Importing contacts" in progress and "1/1" in progress


def test_the_same_imports_work_alike_on_sqlite(tmp_path):
    """Creates, updates, bad and duplicate rows again on SQLite (the `make run` default), whose batch
    statements differ from PostgreSQL's (no COPY, no array parameters)."""
    rerun_on_sqlite(
        tmp_path,
        __file__,
        (
            "test_good_rows_are_imported_with_normalised_values_and_no_opt_in_unless_given",
            "test_imported_opt_ins_are_recorded_with_source_import",
            "test_bad_rows_are_reported_by_number_with_the_reason_and_good_rows_are_kept",
            "test_a_row_duplicating_an_existing_contact_is_rejected",
            "test_a_row_with_contact_id_updates_that_contact_and_records_opt_in_changes",
        ),
    )
