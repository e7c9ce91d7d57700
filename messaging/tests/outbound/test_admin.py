"""The messaging admin: read-only messages with filters, a send form through the gate, templates."""

from __future__ import annotations

import pytest

from accounts.services import user_create
from messaging.models import Message, WhatsAppTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_as(client):
    counter = iter(range(1, 1000))

    def login(role: str):
        client.force_login(user_create(email=f"admin-{role.lower()}{next(counter)}@example.com", role=role))
        return client

    return login


def test_an_operator_sends_from_the_admin_through_the_gate(admin_as, make_contact, django_capture_on_commit_callbacks):
    contact = make_contact(sms=True)
    client = admin_as("Operator")
    assert client.get("/admin/messaging/message/send/").status_code == 200

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/admin/messaging/message/send/", {"contact_id": str(contact.pk), "channel": "sms", "text": "Hi"}
        )

    message = Message.objects.get()
    assert response.status_code == 302 and str(message.pk) in response["Location"]
    assert message.requested_by is not None and len(callbacks) == 1


def test_a_refused_send_from_the_admin_shows_the_code_and_stores_nothing(admin_as, make_contact):
    contact = make_contact(whatsapp=True, window=False)

    response = admin_as("Operator").post(
        "/admin/messaging/message/send/", {"contact_id": str(contact.pk), "channel": "whatsapp", "text": "Hi"}
    )

    assert response.status_code == 200
    assert "Refused (TEMPLATE_REQUIRED)" in response.content.decode()
    assert Message.objects.count() == 0


def test_a_viewer_cannot_open_the_send_form(admin_as):
    assert admin_as("Viewer").get("/admin/messaging/message/send/").status_code == 403


def test_messages_are_read_only_and_filter_by_channel_status_dry_run_and_failure(admin_as, make_contact):
    contact = make_contact(sms=True)
    failed = Message.objects.create(contact=contact, channel="sms", status="failed", error_code="ValidationException")
    dry = Message.objects.create(contact=contact, channel="whatsapp", status="sent", dry_run=True)
    client = admin_as("Admin")

    listing = client.get("/admin/messaging/message/").content.decode()
    failed_only = client.get("/admin/messaging/message/", {"failed": "yes"}).content.decode()
    dry_only = client.get("/admin/messaging/message/", {"dry_run__exact": "1"}).content.decode()
    whatsapp_only = client.get("/admin/messaging/message/", {"channel__exact": "whatsapp"}).content.decode()

    assert "dry run — not sent" in listing
    assert str(failed.pk) in failed_only and str(dry.pk) not in failed_only
    assert str(dry.pk) in dry_only and str(failed.pk) not in dry_only
    assert str(dry.pk) in whatsapp_only and str(failed.pk) not in whatsapp_only
    assert client.get("/admin/messaging/message/add/").status_code == 403
    change = client.get(f"/admin/messaging/message/{failed.pk}/change/")
    assert change.status_code == 200 and 'name="content"' not in change.content.decode()


def test_an_admin_edits_a_template_and_its_placeholders_follow_the_body(admin_as, make_template):
    template = make_template()
    client = admin_as("Admin")
    form = {
        "name": template.name,
        "language": "en_US",
        "category": "UTILITY",
        "status": "APPROVED",
        "waba_id": "",
        "meta_template_id": "",
        "body": "Dear {{name}}, ref {{ref}}",
        "components": "[]",
    }

    response = client.post(f"/admin/messaging/whatsapptemplate/{template.pk}/change/", form)
    refused = client.post(
        f"/admin/messaging/whatsapptemplate/{template.pk}/change/", {**form, "body": "Mixed {{1}} {{name}}"}
    )

    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.parameter_format, template.body_parameters) == ("named", ["name", "ref"])
    assert refused.status_code == 200 and "mix positional and named" in refused.content.decode()


def test_an_admin_syncs_templates_from_the_changelist(admin_as, whatsapp_stub):
    whatsapp_stub.expect("list_linked_whatsapp_business_accounts", {"linkedAccounts": []})

    response = admin_as("Admin").post("/admin/messaging/whatsapptemplate/sync/")

    whatsapp_stub.done()
    assert response.status_code == 302
    assert WhatsAppTemplate.objects.count() == 0


def test_an_operator_may_not_sync_templates(admin_as):
    assert admin_as("Operator").post("/admin/messaging/whatsapptemplate/sync/").status_code == 403
