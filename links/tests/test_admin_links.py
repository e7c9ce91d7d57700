"""The admin: links listed with their clicks; a link created there is validated and audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from links.models import Click, ShortLink

pytestmark = pytest.mark.django_db


def test_the_admin_lists_links_with_their_click_counts(admin_client_role, make_link):
    link = make_link(slug="admin-listed")
    Click.objects.create(link=link)
    Click.objects.create(link=link)

    page = admin_client_role.get("/admin/links/shortlink/").content.decode()

    assert "admin-listed" in page and '<td class="field-click_count">2</td>' in page


def test_a_link_created_in_the_admin_is_validated_and_audited(admin_client_role):
    refused = admin_client_role.post(
        "/admin/links/shortlink/add/", {"slug": "", "destination": "javascript:alert(1)", "enabled": "on"}
    )
    created = admin_client_role.post(
        "/admin/links/shortlink/add/", {"slug": "", "destination": "https://shop.example.com/", "enabled": "on"}
    )

    assert refused.status_code == 200 and "Only http:// and https://" in refused.content.decode()
    assert created.status_code == 302
    link = ShortLink.objects.get()
    assert len(link.slug) == 7
    assert AuditLog.objects.filter(action="link.create", resource_id=str(link.pk)).exists()
