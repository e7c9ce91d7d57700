"""A bulk job's audience may be a saved segment or a tag, evaluated when the job is created."""

from __future__ import annotations

import pytest

from audiences.services import segment_create
from bulk.models import BulkJob, RecipientSource, RecipientStatus
from contacts.attributes import contacts_tag

pytestmark = pytest.mark.django_db

URL = "/api/bulk/jobs/"


@pytest.fixture
def tagged(make_contacts, operator):
    """Six SMS contacts tagged vip, two of them not opted in; four others untagged."""
    vip = make_contacts(4) + make_contacts(2, sms=False)
    make_contacts(4)
    contacts_tag(contact_ids=[c.pk for c in vip], add=["vip"], actor=operator, source="api")
    return vip


def test_a_segment_audience_is_its_members_at_creation_each_judged_by_the_gate(
    operator, api_client, tagged, make_contacts, reset_aws
):
    # given a segment saved before a new contact was tagged
    segment = segment_create(name="VIPs", spec={"tagsAny": ["vip"]}, actor=operator)
    late = make_contacts(1)
    contacts_tag(contact_ids=[late[0].pk], add=["vip"], actor=operator, source="api")

    # when
    response = api_client(operator).post(
        URL, {"channel": "sms", "text": "Sale", "segmentId": str(segment.pk)}, format="json"
    )

    # then the late contact is in (dynamic), the two not opted in are skipped by the gate
    assert response.status_code == 201, response.json()
    job = BulkJob.objects.get(pk=response.json()["jobId"])
    assert job.recipient_source == RecipientSource.SEGMENT
    assert job.source_details["segment"]["name"] == "VIPs" and job.source_details["matched"] == 7
    rows = job.recipients.all()
    assert {r.contact_id for r in rows} == {c.pk for c in [*tagged, *late]}
    skipped = rows.filter(status=RecipientStatus.SKIPPED)
    assert skipped.count() == 2 and set(skipped.values_list("error_code", flat=True)) == {"OPT_IN_REQUIRED"}


def test_a_tag_audience_sends_to_the_tagged_contacts(operator, api_client, tagged, reset_aws):
    response = api_client(operator).post(URL, {"channel": "sms", "text": "Sale", "tag": "VIP"}, format="json")

    assert response.status_code == 201, response.json()
    job = BulkJob.objects.get(pk=response.json()["jobId"])
    assert job.recipient_source == RecipientSource.TAG and job.source_details == {"tag": "vip", "matched": 6}
    assert job.preflight["willSend"] == 4


def test_an_unknown_segment_or_tag_is_a_clear_error_and_nothing_is_stored(operator, api_client, tagged, reset_aws):
    client = api_client(operator)
    unknown = client.post(URL, {"channel": "sms", "text": "x", "segmentId": "7f1f1f1f-1f1f-4f1f-8f1f-1f1f1f1f1f1f"},
                          format="json")  # fmt: skip
    assert unknown.status_code == 400 and unknown.json()["code"] == "INVALID_SEGMENT"
    no_tag = client.post(URL, {"channel": "sms", "text": "x", "tag": "nobody"}, format="json")
    assert no_tag.status_code == 400 and no_tag.json()["code"] == "INVALID_TAG"
    both = client.post(URL, {"channel": "sms", "text": "x", "tag": "vip", "contactIds": []}, format="json")
    assert both.status_code == 400
    assert not BulkJob.objects.exists()


def test_the_wizard_takes_a_segment_as_the_audience(operator_client, operator, tagged, reset_aws):
    segment = segment_create(name="VIP SMS", spec={"tagsAny": ["vip"], "consent": {"sms": True}}, actor=operator)

    page = operator_client.get(f"/bulk/new/?source=segment&segment={segment.pk}")
    assert 'value="segment" checked' in page.content.decode()
    response = operator_client.post(
        "/bulk/new/", {"channel": "sms", "source": "segment", "segment": str(segment.pk), "kind": "text", "text": "Hi"}
    )

    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert job.recipient_source == RecipientSource.SEGMENT and job.total_recipients == 4
    assert operator_client.post("/bulk/new/", {"channel": "sms", "source": "tag", "kind": "text", "text": "Hi"}
                                ).status_code == 200  # fmt: skip
