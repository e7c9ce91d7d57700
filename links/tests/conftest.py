from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from accounts.services import user_create
from contacts.models import ConsentSource
from contacts.services import contact_create
from links import redirect
from links.services import link_create

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def fresh_redirect_state():
    """Each test starts with an empty link cache and no requests counted against any source."""
    redirect.targets.clear()
    redirect.limits.clear()
    yield
    redirect.targets.clear()
    redirect.limits.clear()


@pytest.fixture
def make_user(db):
    def make(role: str | None):
        return user_create(email=f"links-{(role or 'norole').lower()}{next(_numbers)}@example.com", role=role)

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
        client.force_login(user)
        return client

    return client_for


@pytest.fixture
def make_contact(db):
    def make(*, opt_ins=None, **kwargs):
        if "phone" not in kwargs and "email" not in kwargs:
            kwargs["phone"] = f"+9198{next(_numbers):08d}"
        return contact_create(opt_ins=opt_ins or {}, source=ConsentSource.API, **kwargs)

    return make


@pytest.fixture
def make_link(operator):
    def make(**kwargs):
        kwargs.setdefault("destination", "https://shop.example.com/summer")
        return link_create(user=operator, **kwargs)

    return make


BROWSER_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
