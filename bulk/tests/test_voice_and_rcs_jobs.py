"""Bulk jobs on the VOICE and RCS channels: the pre-flight skips who has not opted in, every other
recipient gets exactly one call or RCS message (sent LIVE to the local fake of pinpoint-sms-voice-v2
over HTTP), and the counts are exact. Runs with transaction=True: a chunk's senders use their own
database connections."""

from __future__ import annotations

import pytest

from bulk import execution
from bulk.models import BulkJob, JobStatus
from bulk.services import BulkInputError, BulkMessage, bulk_job_confirm, bulk_job_create
from contacts.models import Contact
from localdev.fake_socialmessaging import FakeSocialMessaging
from messaging.models import Message, MessageStatus, VoiceCall, VoiceCallStatus
from wecare import aws

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(monkeypatch, settings):
    with FakeSocialMessaging(latency=0.002) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", server.url)
        aws.reset_clients()
        settings.SEND_MODE = "LIVE"  # to the fake on 127.0.0.1 only
        settings.RCS_AGENT_ID = "rcs-agent-0123456789abcdef0123456789abcdef"
        settings.RATE_LIMIT_VOICE = settings.RATE_LIMIT_RCS = 5_000.0
        yield server
    monkeypatch.undo()
    aws.reset_clients()


def _run(user, channel: str, contacts, text: str) -> BulkJob:
    job = bulk_job_create(
        user=user, channel=channel, message=BulkMessage(content=text), contact_ids=[str(c.pk) for c in contacts]
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=user, count=job.preflight["willSend"])
    for chunk_id in job.chunks.order_by("sequence").values_list("pk", flat=True):
        execution.chunk_process(chunk_id)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(("channel", "operation"), [("voice", "SendVoiceMessage"), ("rcs", "SendRcsMessage")])
def test_a_job_calls_or_messages_each_opted_in_recipient_once_with_exact_counts(
    operator, make_contacts, fake, reset_aws, channel, operation
):
    contacts = make_contacts(130)
    opted_in = contacts[:120]
    Contact.objects.filter(pk__in=[c.pk for c in opted_in]).update(**{f"opt_in_{channel}": True})

    job = _run(operator, channel, contacts, "Your appointment is tomorrow at 10.")

    assert job.status == JobStatus.COMPLETED
    assert (job.total_recipients, job.sent_count, job.skipped_count, job.failed_count, job.pending_count) == (
        130,
        120,
        10,
        0,
        0,
    )
    calls = fake.calls(operation)
    assert sorted(c.params["DestinationPhoneNumber"] for c in calls) == sorted(c.phone for c in opted_in)
    assert fake.calls("SendTextMessage") == []  # never an SMS instead
    sent = Message.objects.filter(channel=channel, status=MessageStatus.SENT)
    assert sent.count() == 120 and set(sent.values_list("dry_run", flat=True)) == {False}
    assert {m.provider_message_id for m in sent} == {c.message_id for c in calls}
    if channel == "voice":
        records = VoiceCall.objects.filter(message__in=sent)
        assert records.count() == 120 and set(records.values_list("status", flat=True)) == {VoiceCallStatus.INITIATED}
    else:
        assert all("FallbackConfiguration" not in c.params for c in calls)
        assert {c.params["OriginationIdentity"] for c in calls} == {"rcs-agent-0123456789abcdef0123456789abcdef"}


def test_a_voice_or_rcs_job_needs_text(operator, make_contacts):
    contacts = make_contacts(2)
    for channel in ("voice", "rcs"):
        with pytest.raises(BulkInputError) as error:
            bulk_job_create(user=operator, channel=channel, message=BulkMessage(), contact_ids=[str(contacts[0].pk)])
        assert error.value.code == "CONTENT_INVALID"


def test_the_wizard_offers_voice_and_rcs_and_its_preflight_counts_who_opted_in(operator_client, make_contacts):
    contacts = make_contacts(3)
    Contact.objects.filter(pk=contacts[0].pk).update(opt_in_voice=True)

    page = operator_client.get("/bulk/new/").content.decode()
    response = operator_client.post(
        "/bulk/new/",
        {"channel": "voice", "kind": "text", "text": "Your appointment is tomorrow.", "source": "filter",
         "search": "", "include_not_opted_in": "on"},
    )  # fmt: skip

    assert '<option value="voice">Voice</option>' in page and '<option value="rcs">RCS</option>' in page
    job = BulkJob.objects.get(channel="voice")
    assert response.status_code == 302
    assert (job.preflight["willSend"], job.total_recipients) == (1, 3)
