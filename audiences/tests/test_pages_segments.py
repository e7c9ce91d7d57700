"""The segment pages through Django's test client: builder, preview, roles."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from audiences.models import Segment
from audiences.services import segment_create
from contacts.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def contacts(db):
    Contact.objects.create(name="In", phone="+919000000001", opt_in_sms=True)
    Contact.objects.create(name="Out", phone="+919000000002", opt_in_sms=False)
    Contact.objects.create(name="Mail only", email="m@example.com", opt_in_sms=True)


def test_the_preview_counts_and_explains_who_the_gate_would_skip(operator_client, contacts):
    response = operator_client.post("/audiences/preview/", {"channel": "sms"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="preview-count">3<' in html
    assert 'data-testid="preview-would-send">1<' in html
    assert 'data-code="OPT_IN_REQUIRED"' in html and 'data-code="ADDRESS_MISSING"' in html


def test_a_bad_condition_is_shown_in_the_preview_not_saved(operator_client, contacts):
    preview = operator_client.post("/audiences/preview/", {"channel": "sms", "lastInboundAfter": "soon"})
    assert "lastInboundAfter" in preview.content.decode()

    saved = operator_client.post("/audiences/new/", {"name": "Bad", "lastInboundAfter": "soon"})

    assert saved.status_code == 400 and "is not a date" in saved.content.decode()
    assert not Segment.objects.exists()


def test_an_operator_saves_edits_and_deletes_a_segment(operator_client, contacts):
    created = operator_client.post("/audiences/new/", {"name": "SMS people", "consent-sms": "yes"})
    segment = Segment.objects.get()
    assert created.status_code == 302 and segment.spec == {"consent": {"sms": True}}

    page = operator_client.get(f"/audiences/{segment.pk}/").content.decode()
    assert 'value="SMS people"' in page and '<option value="yes" selected>' in page

    operator_client.post(f"/audiences/{segment.pk}/", {"name": "SMS people", "address-email": "on"})
    segment.refresh_from_db()
    assert segment.spec == {"hasAddress": ["email"]}
    operator_client.post(f"/audiences/{segment.pk}/delete/")
    assert not Segment.objects.exists()
    assert [a.action for a in AuditLog.objects.filter(resource_type="segment").order_by("timestamp")] == [
        "segment.create", "segment.update", "segment.delete"]  # fmt: skip


def test_a_viewer_reads_and_previews_but_cannot_change_a_segment(viewer_client, operator, contacts):
    segment = segment_create(name="Everyone", spec={}, actor=operator)

    page = viewer_client.get(f"/audiences/{segment.pk}/").content.decode()
    assert 'data-testid="read-only"' in page and "save-segment" not in page and "<fieldset disabled>" in page
    assert viewer_client.post("/audiences/preview/", {"channel": "sms"}).status_code == 200
    assert viewer_client.get("/audiences/new/").status_code == 403
    assert viewer_client.post(f"/audiences/{segment.pk}/", {"name": "Mine"}).status_code == 403
    assert viewer_client.post(f"/audiences/{segment.pk}/delete/").status_code == 403
    segment.refresh_from_db()
    assert segment.name == "Everyone"


def test_a_user_without_a_role_sees_no_segments(page_user, client, operator, contacts):
    client.force_login(page_user(None))
    assert client.get("/audiences/").status_code == 403


def test_a_read_only_preview_counts_the_saved_segment(viewer_client, operator, contacts):
    segment = segment_create(name="SMS", spec={"consent": {"sms": True}}, actor=operator)

    response = viewer_client.post("/audiences/preview/", {"channel": "sms", "saved_segment": str(segment.pk)})

    assert 'data-testid="preview-count">2<' in response.content.decode()
    assert viewer_client.post("/audiences/preview/", {"saved_segment": "nope"}).status_code == 404
