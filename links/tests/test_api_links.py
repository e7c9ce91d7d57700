"""/api/links/: Operators create and change links, Viewers read, everything validated by the services."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from links.models import Click, ShortLink

pytestmark = pytest.mark.django_db


def test_an_operator_creates_a_link_through_the_api(api_client, operator):
    response = api_client(operator).post(
        "/api/links/",
        {"destination": "https://shop.example.com/", "slug": "api-made", "utm_campaign": "june"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["short_path"] == "/l/api-made" and response.json()["utm_campaign"] == "june"
    assert ShortLink.objects.get().created_by == operator


def test_a_viewer_cannot_create_a_link_and_the_refusal_is_audited(api_client, viewer):
    response = api_client(viewer).post("/api/links/", {"destination": "https://a.example/"}, format="json")

    assert response.status_code == 403
    assert not ShortLink.objects.exists()
    assert AuditLog.objects.filter(action="forbidden", user=viewer).exists()


@pytest.mark.parametrize(
    "destination", ["javascript:alert(1)", "data:text/html,hi", "http://localhost/accounts/login/"]
)
def test_forbidden_destinations_are_refused_with_400(api_client, operator, destination):
    response = api_client(operator).post("/api/links/", {"destination": destination}, format="json")
    assert response.status_code == 400 and "destination" in response.json()
    assert not ShortLink.objects.exists()


def test_a_link_is_switched_off_and_its_stats_read(api_client, operator, viewer, make_link):
    link = make_link(slug="api-stats")
    Click.objects.create(link=link, device="mobile")

    patched = api_client(operator).patch(f"/api/links/{link.pk}/", {"enabled": False}, format="json")
    stats = api_client(viewer).get(f"/api/links/{link.pk}/stats/")
    listed = api_client(viewer).get("/api/links/")

    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert stats.json()["clicks"] == 1 and stats.json()["byDevice"] == {"mobile": 1}
    assert len(stats.json()["perDay"]) == 30
    assert listed.status_code == 200
    assert api_client(viewer).patch(f"/api/links/{link.pk}/", {"enabled": True}, format="json").status_code == 403


def test_a_slug_never_changes(api_client, operator, make_link):
    link = make_link(slug="fixed")
    response = api_client(operator).patch(f"/api/links/{link.pk}/", {"slug": "moved"}, format="json")
    assert response.status_code == 400 and ShortLink.objects.get().slug == "fixed"
