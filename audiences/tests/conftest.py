from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from accounts.services import user_create
from contacts.models import AttributeDefinition, AttributeType, ConsentSource
from contacts.services import contact_create

_numbers = itertools.count(1)


@pytest.fixture
def make_user(db):
    def make(role: str | None):
        return user_create(email=f"aud-{(role or 'norole').lower()}{next(_numbers)}@example.com", role=role)

    return make


@pytest.fixture
def operator(make_user):
    return make_user("Operator")


@pytest.fixture
def viewer(make_user):
    return make_user("Viewer")


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
    def make(*, opt_ins=None, **kwargs):
        if "phone" not in kwargs and "email" not in kwargs:
            kwargs["phone"] = f"+9195{next(_numbers):08d}"
        return contact_create(opt_ins=opt_ins or {}, source=ConsentSource.API, **kwargs)

    return make


@pytest.fixture
def definitions(db):
    return {
        "city": AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT),
        "visits": AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER),
        "birthday": AttributeDefinition.objects.create(name="birthday", type=AttributeType.DATE),
        "vip": AttributeDefinition.objects.create(name="vip", type=AttributeType.BOOLEAN),
        "plan": AttributeDefinition.objects.create(name="plan", type=AttributeType.CHOICE, choices=["free", "pro"]),
    }
