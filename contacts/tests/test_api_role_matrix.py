"""Who may do what on every contact endpoint. A signed-in user refused is a 403 with an audit entry;
a request with no credentials at all is a 401 asking for a bearer token (the API takes Cognito
bearer tokens first, then the session)."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from contacts.services import contact_soft_delete

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "no role", "Viewer", "Operator", "Admin")

# endpoint → (method, path template, body, roles allowed, status when allowed)
ENDPOINTS = {
    "list": ("get", "/api/contacts/", None, {"Viewer", "Operator", "Admin"}, 200),
    "retrieve": ("get", "/api/contacts/{id}/", None, {"Viewer", "Operator", "Admin"}, 200),
    "create": ("post", "/api/contacts/", {"email": "new@example.com"}, {"Operator", "Admin"}, 201),
    "patch": ("patch", "/api/contacts/{id}/", {"name": "Renamed"}, {"Operator", "Admin"}, 200),
    "delete": ("delete", "/api/contacts/{id}/", None, {"Operator", "Admin"}, 204),
    "restore": ("post", "/api/contacts/{deleted_id}/restore", None, {"Admin"}, 200),
    "consent-history": ("get", "/api/contacts/{id}/consent-history", None, {"Viewer", "Operator", "Admin"}, 200),
}


@pytest.fixture
def user_for(make_user):
    def user(role):
        if role == "anonymous":
            return None
        return make_user(None if role == "no role" else role)

    return user


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_role_matrix(endpoint, role, user_for, make_contact, api_client_for):
    method, template, body, allowed, ok_status = ENDPOINTS[endpoint]
    contact = make_contact(name="Asha", opt_ins={"sms": True})
    deleted = make_contact(name="Gone")
    contact_soft_delete(contact=deleted, actor=None)
    user = user_for(role)
    url = template.format(id=contact.pk, deleted_id=deleted.pk)
    forbidden_before = AuditLog.objects.filter(action="forbidden").count()

    kwargs = {"format": "json"} if body is not None else {}
    response = getattr(api_client_for(user), method)(url, body, **kwargs)

    entries = AuditLog.objects.filter(action="forbidden")
    if role == "anonymous":
        assert response.status_code == 401, response.content
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    elif role in allowed:
        assert response.status_code == ok_status, response.content
        assert entries.count() == forbidden_before
    else:
        assert response.status_code == 403, response.content
        assert entries.count() == forbidden_before + 1
        entry = entries.order_by("-timestamp").first()
        assert entry.user == user
        assert entry.actor == user.email
        assert entry.details["method"] == method.upper()
        assert entry.details["path"] == url
        assert entry.details["reason"]
        if "{" in template:
            assert entry.resource_id == url.split("/")[3]


def test_a_refused_change_changes_nothing(viewer, make_contact, api_client_for):
    contact = make_contact(name="Asha")

    response = api_client_for(viewer).patch(f"/api/contacts/{contact.pk}/", {"optInSms": True}, format="json")

    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.opt_in_sms is False
    assert not contact.consent_events.exists()
