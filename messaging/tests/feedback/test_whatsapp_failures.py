"""WhatsApp permanent failure codes in failed status events (EUM Social's envelope, Meta's status) suppress
the contact's number — for marketing templates, or for everything — so the next bulk pre-flight skips
them with a reason instead of paying for the same failure again."""

from __future__ import annotations

import itertools
import time

import pytest
from django.utils import timezone

from accounts.services import user_create
from bulk.models import RecipientStatus
from bulk.services import BulkMessage, bulk_job_create
from messaging import inbound
from messaging.models import InboundEvent, MessageStatus, Suppression, TemplateStatus, WhatsAppTemplate
from messaging.tests.feedback.samples import WHATSAPP_ERROR_TITLES, WHATSAPP_FAILED_STATUS, sample
from messaging.tests.sns_signing import PHONE_NUMBER_ID, eum_envelope, sns_notification, status_value

pytestmark = pytest.mark.django_db
_wamids = itertools.count(1)


@pytest.fixture
def templates(db):
    def make(name: str, category: str) -> WhatsAppTemplate:
        return WhatsAppTemplate.objects.create(
            name=name,
            language="en_US",
            category=category,
            status=TemplateStatus.APPROVED,
            body="Hello {{1}}",
            body_parameters=["1"],
            parameter_format="positional",
            components=[{"type": "BODY", "text": "Hello {{1}}"}],
        )

    return {"MARKETING": make("spring_sale", "MARKETING"), "UTILITY": make("order_update", "UTILITY")}


def _failed(message, code: int) -> str:
    # Now: an expiring suppression runs from the event's time.
    status = sample(WHATSAPP_FAILED_STATUS, id=message.whatsapp_message_id, timestamp=str(int(time.time())))
    status["errors"][0].update(code=code, title=WHATSAPP_ERROR_TITLES[code], message=WHATSAPP_ERROR_TITLES[code])
    return eum_envelope(status_value(status))


def _template_message(sent_message, contact):
    return sent_message(
        contact,
        "whatsapp",
        whatsapp_message_id=f"wamid.failed-{next(_wamids)}",
        origination_phone_number_id=PHONE_NUMBER_ID,
    )


def _preflight(contacts, template) -> dict:
    operator = user_create(email=f"op-{template.name}-{next(_wamids)}@example.com", role="Operator")
    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            message_type="template", template_name=template.name, template_language="en_US", template_parameters=["x"]
        ),
        contact_ids=[str(c.pk) for c in contacts],
    )
    return {r.contact_id: (r.status, r.error_code, r.error_details) for r in job.recipients.all()}


def test_131050_suppresses_marketing_and_the_next_preflight_skips_only_marketing(
    make_contact, sent_message, templates, deliver_sns, reset_aws
):
    stopped, other = make_contact(opt_ins={"whatsapp": True}), make_contact(opt_ins={"whatsapp": True})
    message = _template_message(sent_message, stopped)

    deliver_sns(_failed(message, 131050))

    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "131050")
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.category, suppression.reason) == (
        "whatsapp", stopped.phone, "MARKETING", "whatsapp_marketing_stopped"
    )  # fmt: skip
    assert suppression.expires_at is None

    marketing = _preflight([stopped, other], templates["MARKETING"])
    assert marketing[stopped.pk][:2] == (RecipientStatus.SKIPPED, "WHATSAPP_SUPPRESSED")
    assert "for marketing templates" in marketing[stopped.pk][2]
    assert marketing[other.pk][:2] == (RecipientStatus.PENDING, "")
    utility = _preflight([stopped], templates["UTILITY"])
    assert utility[stopped.pk][:2] == (RecipientStatus.PENDING, "")


def test_131049_suppresses_marketing_for_the_configured_days(settings, make_contact, sent_message, deliver_sns):
    settings.WHATSAPP_MARKETING_LIMIT_SUPPRESSION_DAYS = 7
    contact = make_contact(opt_ins={"whatsapp": True})
    message = _template_message(sent_message, contact)

    deliver_sns(_failed(message, 131049))

    suppression = Suppression.objects.get()
    assert (suppression.category, suppression.reason) == ("MARKETING", "whatsapp_marketing_limit")
    assert (suppression.expires_at - suppression.created_at).days == 7
    # Past its expiry the suppression no longer counts.
    assert Suppression.objects.active(now=suppression.expires_at + timezone.timedelta(seconds=1)).count() == 0


def test_131026_suppresses_every_whatsapp_message_to_the_number(
    make_contact, sent_message, templates, deliver_sns, reset_aws
):
    contact, other = make_contact(opt_ins={"whatsapp": True}), make_contact(opt_ins={"whatsapp": True})
    message = _template_message(sent_message, contact)

    deliver_sns(_failed(message, 131026))

    suppression = Suppression.objects.get()
    assert (suppression.category, suppression.reason) == ("", "whatsapp_undeliverable")
    preflight = _preflight([contact, other], templates["UTILITY"])
    assert preflight[contact.pk][:2] == (RecipientStatus.SKIPPED, "WHATSAPP_SUPPRESSED")
    assert preflight[other.pk][:2] == (RecipientStatus.PENDING, "")


def test_other_failure_codes_suppress_nothing(make_contact, sent_message, deliver_sns):
    contact = make_contact(opt_ins={"whatsapp": True})
    message = _template_message(sent_message, contact)
    status = sample(WHATSAPP_FAILED_STATUS, id=message.whatsapp_message_id)
    status["errors"][0].update(code=131047, title="Re-engagement message")

    deliver_sns(eum_envelope(status_value(status)))

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert not Suppression.objects.exists()


def test_the_batched_status_path_applies_the_same_mapping(make_contact, sent_message, sns_setup):
    contact = make_contact(opt_ins={"whatsapp": True})
    message = _template_message(sent_message, contact)
    body = sns_notification(_failed(message, 131050))
    event = InboundEvent.objects.create(sns_message_id=body["MessageId"], topic_arn=body["TopicArn"], body=body)

    summary = inbound.inbound_events_process(event_ids=[str(event.pk)])

    assert summary.processed == [str(event.pk)]
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert Suppression.objects.get().reason == "whatsapp_marketing_stopped"


def test_the_same_failure_twice_keeps_one_suppression_and_its_first_date(make_contact, sent_message, deliver_sns):
    contact = make_contact(opt_ins={"whatsapp": True})
    first, second = _template_message(sent_message, contact), _template_message(sent_message, contact)

    deliver_sns(_failed(first, 131050))
    since = Suppression.objects.get().created_at
    deliver_sns(_failed(second, 131050))

    assert Suppression.objects.get().created_at == since
