from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_create
from bulk.tests.funnel_fixtures import sent_job  # noqa: F401  (a sent job with its status events)
from contacts.models import ConsentSource, Contact
from contacts.search import build_search_text
from contacts.services import contact_create
from messaging.models import TemplateStatus, WhatsAppTemplate

_numbers = itertools.count(1)


@pytest.fixture
def make_user(db):
    def make(role: str | None):
        return user_create(email=f"bulk-{(role or 'norole').lower()}{next(_numbers)}@example.com", role=role)

    return make


@pytest.fixture
def operator(make_user):
    return make_user("Operator")


@pytest.fixture
def viewer(make_user):
    return make_user("Viewer")


@pytest.fixture
def admin_user(make_user):
    return make_user("Admin")


@pytest.fixture
def api_client():
    def client_for(user):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return client_for


@pytest.fixture
def make_contact(db):
    """One contact through the contacts service (consent history included)."""

    def make(*, opt_ins=None, **kwargs):
        if "phone" not in kwargs and "email" not in kwargs:
            kwargs["phone"] = f"+9197{next(_numbers):08d}"
        return contact_create(opt_ins=opt_ins or {}, source=ConsentSource.API, **kwargs)

    return make


@pytest.fixture
def make_contacts(db):
    """Many opted-in contacts at once (bulk insert: thousands in a second).

    ``in_window=True`` gives each a recent inbound message, so free-form WhatsApp text may go to them.
    """

    def make(count: int, *, in_window: bool = True, email: bool = False, **opt_ins) -> list[Contact]:
        now = timezone.now()
        base = next(_numbers) * 100_000
        contacts = []
        for n in range(count):
            phone = f"+9196{base + n:08d}"
            address = f"bulk{base + n}@example.com" if email else None
            contacts.append(
                Contact(
                    name=f"Bulk {base + n}",
                    phone=phone,
                    email=address,
                    opt_in_whatsapp=opt_ins.get("whatsapp", True),
                    opt_in_sms=opt_ins.get("sms", True),
                    opt_in_email=opt_ins.get("email", email),
                    last_inbound_message_at=now - timedelta(minutes=5) if in_window else None,
                    search_text=build_search_text(name=f"Bulk {base + n}", phone=phone, email=address),
                )
            )
        return Contact.objects.bulk_create(contacts, batch_size=1000)

    return make


@pytest.fixture
def approved_template(db):
    return WhatsAppTemplate.objects.create(
        name="order_update",
        language="en_US",
        category="UTILITY",
        status=TemplateStatus.APPROVED,
        body="Hello {{1}}, your order {{2}} is on its way.",
        body_parameters=["1", "2"],
        parameter_format="positional",
    )
