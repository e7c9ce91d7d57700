"""/api/segments/: save, change, delete, preview; roles."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from audiences.models import Segment

pytestmark = pytest.mark.django_db

URL = "/api/segments/"


@pytest.fixture
def people(make_contact):
    make_contact(name="A", opt_ins={"sms": True})
    make_contact(name="B")
    make_contact(name="C", email="c@example.com", opt_ins={"sms": True})


def test_an_operator_saves_a_segment_and_previews_it(operator, api_client, people):
    client = api_client(operator)
    created = client.post(URL, {"name": "SMS", "spec": {"consent": {"sms": True}}}, format="json")
    assert created.status_code == 201, created.json()
    segment_id = created.json()["segmentId"]

    preview = client.get(f"{URL}{segment_id}/preview?channel=sms")

    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert body["count"] == 2 and body["wouldSend"] == 1 and body["skipped"] == {"ADDRESS_MISSING": 1}
    assert body["messageType"] == "text" and len(body["sample"]) == 2


def test_an_unsaved_spec_is_previewed_and_a_bad_one_refused(viewer, api_client, people):
    client = api_client(viewer)

    ok = client.post(f"{URL}preview", {"spec": {}, "channel": "whatsapp", "messageType": "text"}, format="json")
    bad = client.post(f"{URL}preview", {"spec": {"consent": {"fax": True}}, "channel": "sms"}, format="json")
    wrong_kind = client.post(f"{URL}preview", {"spec": {}, "channel": "sms", "messageType": "template"}, format="json")

    assert ok.status_code == 200 and ok.json()["skipped"] == {"OPT_IN_REQUIRED": 3}
    assert bad.status_code == 400 and "consent" in bad.json()
    assert wrong_kind.status_code == 400


def test_names_are_unique_and_changes_are_audited(operator, api_client, people):
    client = api_client(operator)
    first = client.post(URL, {"name": "VIP", "spec": {}}, format="json").json()["segmentId"]
    assert client.post(URL, {"name": "vip", "spec": {}}, format="json").status_code == 400

    changed = client.patch(f"{URL}{first}/", {"spec": {"tagsAny": ["vip"]}}, format="json")
    assert changed.status_code == 200 and changed.json()["spec"] == {"tagsAny": ["vip"]}
    assert client.delete(f"{URL}{first}/").status_code == 204
    actions = set(AuditLog.objects.filter(resource_type="segment").values_list("action", flat=True))
    assert actions == {"segment.create", "segment.update", "segment.delete"}


def test_a_viewer_reads_but_does_not_change_segments(operator, viewer, api_client, people):
    segment_id = api_client(operator).post(URL, {"name": "All", "spec": {}}, format="json").json()["segmentId"]
    reader = api_client(viewer)

    assert reader.get(URL).status_code == 200
    assert reader.get(f"{URL}{segment_id}/preview?channel=email").status_code == 200
    assert reader.post(URL, {"name": "Mine", "spec": {}}, format="json").status_code == 403
    assert reader.patch(f"{URL}{segment_id}/", {"name": "Mine"}, format="json").status_code == 403
    assert reader.delete(f"{URL}{segment_id}/").status_code == 403
    assert api_client(None).get(URL).status_code in (401, 403)
    assert Segment.objects.get().name == "All"
