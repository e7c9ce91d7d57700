"""Shared by the funnel tests: a sent WhatsApp job and status events in the real EUM/SNS format (the
reference fixtures in /work/shared/reference/fixtures, and events of the same shape)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from bulk import execution
from bulk.models import BulkJobChunk, BulkRecipient, JobStatus
from bulk.services import BulkMessage, bulk_job_create
from messaging import inbound
from messaging.models import Message
from messaging.tests.sns_signing import eum_envelope, fixture_body, inbound_value, sns_notification

DELIVERED_WAMID = "wamid.HBgLMTkxNzM5OTI3MzkVAgARGBJBMTM4NDdGRENEREI5Rexample"
FAILED_WAMID = "wamid.HBgLMTQyNTU1NTAxNTAVAgARGBI3RjE2QUQ4NUY1QzA5RTJEMjQA"


def reference_event(name: str) -> dict:
    return json.loads(fixture_body(name))


def status_event(wamid: str, status: str, *, at, pricing_category: str = "") -> dict:
    """The reference "delivered" notification with another message, status, time and pricing."""
    body = reference_event("sns-notification-status-delivered.json")
    envelope = json.loads(body["Message"])
    entry = json.loads(envelope["whatsAppWebhookEntry"])
    event = entry["changes"][0]["value"]["statuses"][0]
    event.update(id=wamid, status=status, timestamp=str(int(at.timestamp())))
    if pricing_category:
        event["pricing"] = {"billable": True, "pricing_model": "PMP", "category": pricing_category}
    else:
        event.pop("pricing"), event.pop("conversation")
    envelope["whatsAppWebhookEntry"] = json.dumps(entry)
    envelope["messageId"] = str(uuid.uuid4())
    return {**body, "MessageId": str(uuid.uuid4()), "Message": json.dumps(envelope)}


def reply_event(contact, *, at) -> None:
    value = inbound_value(
        {"id": f"wamid.reply{uuid.uuid4().hex}", "type": "text", "text": {"body": "Yes please"}},
        wa_id=contact.phone.lstrip("+"),
        name=contact.name,
    )
    value["messages"][0]["timestamp"] = str(int(at.timestamp()))
    inbound.notification_process(sns_notification(eum_envelope(value)))


@pytest.fixture
def sent_job(operator, make_contacts, reset_aws):
    """A WhatsApp job of 6 sent recipients (A…F) and 1 skipped (not opted in), sent in-process."""
    sendable = make_contacts(6)
    refused = make_contacts(1, whatsapp=False)
    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(content="Your table is ready"),
        contact_ids=[str(c.pk) for c in [*sendable, *refused]],
    )
    execution.chunk_process(BulkJobChunk.objects.get(job=job).pk)
    job.refresh_from_db()
    assert (job.status, job.sent_count, job.skipped_count) == (JobStatus.COMPLETED, 6, 1)
    messages = {c.pk: Message.objects.get(contact=c) for c in sendable}
    for index, contact in enumerate(sendable):  # the wamid each send's answer carried
        wamid = (DELIVERED_WAMID, FAILED_WAMID)[index] if index < 2 else f"wamid.job{uuid.uuid4().hex}"
        Message.objects.filter(pk=messages[contact.pk].pk).update(whatsapp_message_id=wamid)
    return job, sendable, refused


def funnel_events(job, sendable) -> None:
    a, b, c, d, e, f = sendable
    wamid = {x.pk: Message.objects.get(contact=x).whatsapp_message_id for x in sendable}
    now = timezone.now()
    inbound.notification_process(reference_event("sns-notification-status-delivered.json"))  # A: delivered, utility
    inbound.notification_process(reference_event("sns-notification-status-failed.json"))  # B: failed, 131047
    for contact in (c, d):
        inbound.notification_process(status_event(wamid[contact.pk], "delivered", at=now + timedelta(seconds=5)))
        inbound.notification_process(status_event(wamid[contact.pk], "read", at=now + timedelta(seconds=9)))
    inbound.notification_process(
        status_event(wamid[e.pk], "delivered", at=now + timedelta(seconds=6), pricing_category="marketing")
    )
    reply_event(d, at=now + timedelta(minutes=1))  # D replied within 72 h
    # E replied too, but 80 hours after its send: not counted.
    BulkRecipient.objects.filter(job=job, contact=e).update(sent_at=now - timedelta(hours=81))
    reply_event(e, at=now - timedelta(hours=1))
