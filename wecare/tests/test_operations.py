"""The operations page (Admins only), its live fragment, DLQ replay from it, queue metrics, and health."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from contacts.models import Contact
from messaging.models import DLQMessage, Message
from wecare import operations
from wecare.tasks import observe_queues
from wecare.tests.log_capture import captured_logs

pytestmark = pytest.mark.django_db


def _outbound(contact, **fields) -> Message:
    return Message.objects.create(contact=contact, channel=fields.pop("channel", "whatsapp"), **fields)


@pytest.fixture
def traffic():
    """Sends of the last hours, one delivered and read, two failures with reasons, a parked DLQ record."""
    contact = Contact.objects.create(name="Ops", phone=f"+9198{uuid.uuid4().int % 10**8:08d}")
    now = timezone.now()
    sent = [
        _outbound(contact, status="read", sent_at=now - timedelta(minutes=5), delivered_at=now, read_at=now),
        _outbound(contact, status="sent", sent_at=now - timedelta(minutes=5)),
        _outbound(contact, channel="sms", status="delivered", sent_at=now - timedelta(hours=3), delivered_at=now),
    ]
    failed = [
        _outbound(contact, status="failed", failed_at=now - timedelta(minutes=1), error_code="ValidationException"),
        _outbound(contact, status="failed", failed_at=now - timedelta(minutes=2), error_code="ValidationException"),
    ]
    dlq = DLQMessage.objects.create(
        queue_name="outbound-dlq",
        original_message_id=str(failed[0].pk),
        payload={},
        status=DLQMessage.Status.PARKED,
        last_error="ChannelError: number +919812345678 refused",
    )
    return {"sent": sent, "failed": failed, "dlq": dlq, "contact": contact}


def test_only_admins_open_the_operations_page(viewer_client, operator_client, admin_client_role):
    assert viewer_client.get("/operations/").status_code == 403
    assert operator_client.get("/operations/").status_code == 403
    assert AuditLog.objects.filter(action="forbidden", details__path="/operations/").count() == 2
    response = admin_client_role.get("/operations/")
    assert response.status_code == 200
    assert b'data-nav="operations"' in response.content
    assert b'data-nav="operations"' not in operator_client.get("/").content


def test_the_page_shows_queues_rates_failures_tier_limits_and_errors_with_links(admin_client_role, traffic, settings):
    body = admin_client_role.get("/operations/").content.decode()

    for name, _ in operations.queue_names():
        assert f'data-queue="{name}"' in body
    assert body.count(">Replay</button>") == 3  # one per DLQ, none for the work queues
    assert 'data-series="whatsapp"' in body and 'data-series="sms"' in body
    assert "whatsapp (2)" in body and "sms (1)" in body  # sends in the last 24 hours, per channel
    assert 'class="threshold"' in body and ">80%</text>" in body  # the tier chart's 80 % line
    assert "ValidationException" in body
    failed_id = str(traffic["failed"][0].pk)
    assert f'href="/admin/messaging/message/{failed_id}/change/"' in body
    assert f'href="/admin/messaging/dlqmessage/{traffic["dlq"].pk}/change/"' in body
    assert "919812345678" not in body  # error texts are masked
    assert "{{" not in body and "{%" not in body


def test_delivery_and_read_rates_count_the_last_24_hours(traffic):
    rates = {row["channel"]: row for row in operations.delivery_rates()}

    assert (rates["whatsapp"]["sent"], rates["whatsapp"]["delivered"], rates["whatsapp"]["read"]) == (2, 1, 1)
    assert (rates["whatsapp"]["delivery_rate"], rates["whatsapp"]["read_rate"]) == (50.0, 50.0)
    assert rates["whatsapp"]["failed"] == 2
    assert rates["sms"]["delivery_rate"] == 100.0 and rates["email"]["delivery_rate"] is None
    assert operations.failures_by_reason() == [{"reason": "ValidationException", "count": 2}]
    series = operations.sends_per_minute()
    assert len(series["whatsapp"]) == 1440 and sum(series["whatsapp"]) == 2 and series["whatsapp"][-6] == 2


def test_the_live_fragment_is_only_the_polled_part(admin_client_role, traffic):
    response = admin_client_role.get("/operations/live/", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="ops-live"') and "<html" not in body
    assert 'hx-trigger="every 30s"' in body


def test_an_admin_replays_a_dlq_from_the_page_and_it_is_audited(admin_client_role, operator_client):
    assert operator_client.post("/operations/replay/outbound-dlq/").status_code == 403
    assert admin_client_role.post("/operations/replay/no-such-dlq/").status_code == 404

    response = admin_client_role.post("/operations/replay/outbound-dlq/", follow=True)

    assert response.status_code == 200
    assert "outbound-dlq: " in response.content.decode() and "received" in response.content.decode()
    assert AuditLog.objects.filter(action="dlq.replay", resource_id="outbound-dlq").count() == 1


def test_beat_reports_queue_depth_and_oldest_age_for_every_queue(traffic, settings):
    waiting = DLQMessage.objects.create(
        queue_name="inbound-dlq", original_message_id=uuid.uuid4().hex, payload={}, status="pending"
    )
    DLQMessage.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=600))

    with captured_logs() as captured:
        observe_queues()

    queues = {name for name, _ in operations.queue_names()}
    depths = {line["Queue"] for line in captured.emf() if "QueueDepth" in line}
    assert depths == queues
    (age,) = captured.metric_values("QueueOldestAge", Queue="inbound-dlq")
    assert 600 <= age < 660
    assert len(captured.metric_values("TierUsePercent")) == len(settings.WHATSAPP_PHONE_NUMBER_IDS)


def test_beat_schedules_the_queue_observation_every_minute(settings):
    from wecare.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["observe-queues"]
    assert entry["task"] in app.tasks and entry["schedule"] == 60.0


def test_liveness_answers_without_checking_dependencies_and_readiness_checks_them(client, settings):
    settings.MEDIA_BUCKET = "bucket-that-does-not-exist"

    assert client.get("/healthz/live").json() == {"status": "ok"}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 503 and ready.json()["aws"] == "down"


def test_the_admin_index_links_to_the_operations_page(admin_client_role):
    response = admin_client_role.get("/admin/")

    assert response.status_code == 200
    assert b'href="/operations/"' in response.content
