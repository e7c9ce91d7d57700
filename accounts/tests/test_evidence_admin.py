"""Audit and evidence rows cannot be edited or deleted from the admin, by anyone: a superuser who
tries gets a 403 (audited), and the row is still there. Only the retention purge removes them."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts.models import AuditLog, User
from accounts.services import audit_record
from contacts.models import ConsentEvent, ConsentSource
from contacts.services import contact_create
from messaging.models import DLQMessage, InboundEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client():
    root = User.objects.create_superuser(username="root@example.com", email="root@example.com", password="x" * 20)
    client = Client()
    client.force_login(root)
    return client


def _evidence():
    contact = contact_create(
        name="Asha", phone="+919876543210", opt_ins={"sms": True}, actor=None, source=ConsentSource.ADMIN
    )
    return {
        "accounts/auditlog": audit_record(user=None, action="test.evidence"),
        "messaging/inboundevent": InboundEvent.objects.create(sns_message_id=str(uuid.uuid4()), topic_arn="t", body={}),
        "messaging/dlqmessage": DLQMessage.objects.create(
            queue_name="inbound-dlq", original_message_id=str(uuid.uuid4()), payload={"a": 1}
        ),
        "contacts/consentevent": ConsentEvent.objects.get(contact=contact),
    }


@pytest.mark.parametrize(
    "model", ["accounts/auditlog", "messaging/inboundevent", "messaging/dlqmessage", "contacts/consentevent"]
)
def test_a_superuser_can_neither_delete_nor_edit_evidence_in_the_admin(root_client, model):
    row = _evidence()[model]
    url = f"/admin/{model}/{row.pk}/"

    deleted = root_client.post(f"{url}delete/", {"post": "yes"})
    edited = root_client.post(f"{url}change/", {})
    bulk = root_client.post(f"/admin/{model}/", {"action": "delete_selected", "_selected_action": [str(row.pk)]})

    assert deleted.status_code == 403
    assert edited.status_code == 403
    assert "delete_selected" not in root_client.get(f"/admin/{model}/").content.decode()
    assert bulk.status_code in (200, 302)
    assert type(row).objects.filter(pk=row.pk).exists()
    assert AuditLog.objects.filter(action="forbidden", actor="root@example.com").count() >= 2
