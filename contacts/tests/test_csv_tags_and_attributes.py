"""The tags column and attr.<name> columns: imported (checked, added), exported (formula-safe), round trip."""

from __future__ import annotations

import csv
import io

import pytest

from contacts.attributes import contact_set_attributes, contacts_tag
from contacts.exporting import contacts_export_csv, contacts_export_rows
from contacts.importing import ImportFileError, contacts_import, open_csv
from contacts.models import AttributeDefinition, AttributeType, Contact, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def definitions(db):
    AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT)
    AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER)
    AttributeDefinition.objects.create(name="vip", type=AttributeType.BOOLEAN)


def _import(text: str, **kwargs):
    return contacts_import(rows=open_csv(text.encode(), name="The file"), **kwargs)


def test_tags_and_attributes_are_imported_checked_and_added(definitions, make_contact):
    existing = make_contact(name="Old", phone="+919800000001")
    contacts_tag(contact_ids=[existing.pk], add=["keep"], actor=None, source="import")
    text = (
        "contactId,phone,name,tags,attr.city,attr.visits,attr.vip\n"
        f"{existing.pk},+919800000001,Old,vip;Pune,Goa,3,yes\n"
        ",+919800000002,New,vip,,7,\n"
        ",+919800000003,Bad,,Goa,many,perhaps\n"
    )

    progress = _import(text)

    assert (progress.created, progress.updated, progress.rejected) == (1, 1, 1)
    assert {column for column, _ in progress.bad_rows[0].errors} == {"attr.visits", "attr.vip"}
    old, new = Contact.objects.get(phone="+919800000001"), Contact.objects.get(phone="+919800000002")
    assert old.attributes == {"city": "Goa", "visits": 3, "vip": True}
    assert sorted(old.tags.values_list("name", flat=True)) == ["keep", "pune", "vip"]
    assert old.tag_ids == sorted(old.tags.values_list("pk", flat=True))
    assert new.attributes == {"visits": 7} and list(new.tags.values_list("name", flat=True)) == ["vip"]
    assert new.tag_ids == [Tag.objects.get(name="vip").pk]
    assert not Contact.objects.filter(name="Bad").exists()


def test_a_column_of_an_undeclared_attribute_stops_the_file(definitions):
    with pytest.raises(ImportFileError, match="attr.shoe"):
        open_csv(b"phone,attr.shoe\n+919800000001,42\n")


def test_a_dry_run_creates_no_tags(definitions):
    _import("phone,tags\n+919800000001,fresh\n", dry_run=True)
    assert not Tag.objects.exists() and not Contact.objects.exists()


def test_the_export_has_tags_and_attributes_formula_safe_and_imports_back(definitions, make_contact):
    contact = make_contact(name="Asha", phone="+919800000001")
    contact_set_attributes(contact=contact, values={"city": "=HYPERLINK(1)", "visits": 2, "vip": False},
                           actor=None, source="api")  # fmt: skip
    contacts_tag(contact_ids=[contact.pk], add=["b", "a"], actor=None, source="api")

    text = "".join(contacts_export_csv(Contact.objects.active()))
    python_rows = list(contacts_export_rows(Contact.objects.active()))

    rows = list(csv.DictReader(io.StringIO(text)))
    # On PostgreSQL the export is COPY's, checked against the Python rows; on SQLite both are Python's.
    assert [list(rows[0]), *[list(r.values()) for r in rows]] == python_rows
    assert rows[0]["tags"] == "a;b"
    assert (rows[0]["attr.city"], rows[0]["attr.visits"], rows[0]["attr.vip"]) == ("'=HYPERLINK(1)", "2", "false")

    Contact.objects.all().update(attributes={})
    progress = _import(text)
    assert progress.updated == 1, progress.bad_rows
    contact.refresh_from_db()
    assert contact.attributes == {"city": "=HYPERLINK(1)", "visits": 2, "vip": False}
