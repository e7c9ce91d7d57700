"""De-duplicated critical alerts on the SNS topic (moto over HTTP; an SQS queue subscribed to the topic
receives what the topic publishes)."""

from __future__ import annotations

import time
import uuid

import pytest
from celery import shared_task

from wecare import alerts
from wecare.tests.log_capture import captured_logs

pytestmark = pytest.mark.django_db


@shared_task(name="wecare.tests.always_fails")
def always_fails(n: int) -> None:
    raise RuntimeError(f"the same failure, call {n}")


@pytest.fixture
def fresh_environment(settings):
    """Alert windows are per environment: a fresh one per test, so tests never share a window."""
    settings.ENVIRONMENT = f"test-{uuid.uuid4().hex[:8]}"
    return settings.ENVIRONMENT


def test_a_hundred_identical_worker_failures_send_one_alert(settings, alert_inbox, fresh_environment):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = False
    from wecare.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = False
    try:
        with captured_logs() as captured:
            for n in range(100):
                always_fails.apply(args=[n])
    finally:
        app.conf.task_always_eager = False
        app.conf.task_eager_propagates = True

    notes = alert_inbox()
    assert len(notes) == 1
    assert notes[0]["Subject"].startswith(f"[WECARE.DIGITAL {fresh_environment}] Worker task wecare.tests.always_fails")
    assert notes[0]["MessageAttributes"]["kind"]["Value"] == "worker-exception:wecare.tests.always_fails"
    assert captured.metric_values("WorkerErrors") == [1] * 100
    failures = [r for r in captured.records() if r.get("task") == "wecare.tests.always_fails"]
    assert len(failures) == 100 and all("RuntimeError" in r["stackTrace"] for r in failures)
    item = alerts.AlertWindow.get(f"{fresh_environment}#worker-exception:wecare.tests.always_fails")
    assert int(item.suppressed) == 99


def test_the_next_window_alerts_again_and_says_how_many_were_suppressed(alert_inbox, fresh_environment):
    now = time.time()
    for _ in range(7):
        alerts.alert_raise("provider-outage:socialmessaging", subject="EUM Social down", detail="send failed", now=now)
    assert len(alert_inbox()) == 1

    alerts.alert_raise(
        "provider-outage:socialmessaging", subject="EUM Social down", detail="send failed", now=now + 14 * 60
    )
    assert alert_inbox() == []
    published = alerts.alert_raise(
        "provider-outage:socialmessaging", subject="EUM Social down", detail="send failed", now=now + 15 * 60 + 1
    )

    (note,) = alert_inbox()
    assert published is True
    assert "7 more alert(s) of this kind were suppressed" in note["Message"]


def test_different_kinds_are_not_suppressed_by_each_other(alert_inbox, fresh_environment):
    alerts.alert_raise("dlq-parked:inbound-dlq", subject="parked", detail="x")
    alerts.alert_raise("bulk-chunk-dead-lettered", subject="chunk", detail="y")

    assert {n["MessageAttributes"]["kind"]["Value"] for n in alert_inbox()} == {
        "dlq-parked:inbound-dlq",
        "bulk-chunk-dead-lettered",
    }


def test_an_alert_text_is_masked_like_a_log_line(alert_inbox, fresh_environment):
    alerts.alert_raise("archive-failed:messaging.message", subject="to +919812345678", detail="for ana@example.com")

    (note,) = alert_inbox()
    assert "919812345678" not in note["Subject"] + note["Message"]
    assert "ana@" not in note["Message"] and "a***@example.com" in note["Message"]


def test_the_alert_goes_out_even_when_de_duplication_is_unavailable(alert_inbox, fresh_environment, monkeypatch):
    from pynamodb.exceptions import UpdateError

    def unavailable(*args, **kwargs):
        raise UpdateError("DynamoDB is unreachable")

    monkeypatch.setattr(alerts.AlertWindow, "update", unavailable)

    assert alerts.alert_raise("provider-outage:sesv2", subject="SES down", detail="x") is True
    assert len(alert_inbox()) == 1
