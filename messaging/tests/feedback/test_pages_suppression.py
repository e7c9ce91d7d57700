"""The contact page shows why and since when an address is suppressed; an Admin lifts it there (audited),
an Operator may not; the admin list lifts too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import AuditLog
from messaging.feedback.suppressions import suppression_add
from messaging.models import Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def bounced(make_contact):
    contact = make_contact(opt_ins={"email": True})
    suppression, _ = suppression_add(
        channel="email",
        address=contact.email,
        reason="hard_bounce",
        detail="Permanent/General: 5.1.1 smtp; 550 5.1.1 user unknown",
        contact=contact,
        now=datetime(2026, 11, 30, 9, 15, tzinfo=UTC),
    )
    return contact, suppression


def test_the_contact_page_shows_why_and_since_when_the_address_is_suppressed(viewer_client, bounced):
    contact, _ = bounced

    page = viewer_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert 'data-testid="suppressions"' in page
    assert "Hard bounce" in page and "550 5.1.1 user unknown" in page
    assert "30 Nov 2026" in page and "until lifted" in page
    assert ">Lift</button>" not in page  # a Viewer is not offered the lift


def test_an_admin_lifts_the_suppression_from_the_contact_page(admin_client_role, bounced):
    contact, suppression = bounced
    page = admin_client_role.get(f"/contacts/{contact.pk}/").content.decode()
    assert ">Lift</button>" in page

    response = admin_client_role.post(f"/contacts/{contact.pk}/suppressions/{suppression.pk}/lift/")

    assert response.status_code == 302
    suppression.refresh_from_db()
    assert suppression.lifted_at is not None and suppression.lifted_by.email.startswith("admin")
    assert AuditLog.objects.filter(action="suppression.lift", resource_id=str(suppression.pk)).exists()
    assert 'data-testid="suppressions"' not in admin_client_role.get(f"/contacts/{contact.pk}/").content.decode()


def test_an_operator_cannot_lift_a_suppression(operator_client, bounced):
    contact, suppression = bounced

    response = operator_client.post(f"/contacts/{contact.pk}/suppressions/{suppression.pk}/lift/")

    assert response.status_code == 403
    suppression.refresh_from_db()
    assert suppression.lifted_at is None


def test_a_suppression_of_another_contacts_address_is_not_lifted_through_this_contact(
    admin_client_role, bounced, make_contact
):
    _, suppression = bounced
    other = make_contact()

    admin_client_role.post(f"/contacts/{other.pk}/suppressions/{suppression.pk}/lift/")

    suppression.refresh_from_db()
    assert suppression.lifted_at is None


def test_the_admin_action_lifts_selected_suppressions(admin_client_role, bounced):
    _, suppression = bounced

    response = admin_client_role.post(
        "/admin/messaging/suppression/", {"action": "lift", "_selected_action": [str(suppression.pk)]}
    )

    assert response.status_code == 302
    assert Suppression.objects.active().count() == 0
    assert AuditLog.objects.filter(action="suppression.lift").count() == 1


def test_the_admin_list_of_suppressions_renders(admin_client_role, bounced):
    response = admin_client_role.get("/admin/messaging/suppression/?state=active")

    assert response.status_code == 200
    assert bounced[0].email in response.content.decode()
