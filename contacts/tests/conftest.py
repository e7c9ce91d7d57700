from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from accounts.services import user_create
from contacts.models import ConsentSource
from contacts.services import contact_create

_numbers = itertools.count(1)


@pytest.fixture
def make_user(db):
    """A user with a role (or none): ``make_user("Operator")``."""

    def make(role: str | None):
        n = next(_numbers)
        user = user_create(email=f"{(role or 'norole').lower()}{n}@example.com", role=role)
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("Viewer")


@pytest.fixture
def operator(make_user):
    return make_user("Operator")


@pytest.fixture
def admin_role_user(make_user):
    return make_user("Admin")


@pytest.fixture
def make_contact(db):
    """A contact created through the service: ``make_contact(name="Asha", phone="+919876543210")``."""

    def make(**kwargs):
        n = next(_numbers)
        if "phone" not in kwargs and "email" not in kwargs:
            kwargs["phone"] = f"+9198{n:08d}"
        kwargs.setdefault("source", ConsentSource.API)
        return contact_create(**kwargs)

    return make


@pytest.fixture
def api_client_for():
    """An API client signed in as ``user`` (anonymous for None)."""

    def client_for(user):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return client_for
