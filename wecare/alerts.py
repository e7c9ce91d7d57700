"""Critical-error alerts to the platform's SNS topic, de-duplicated (requirement 14.7).

The same kind of alert goes out at most once per ALERT_WINDOW_SECONDS (15 minutes) per environment,
however many workers hit the same failure: the first caller of a window wins a conditional write on
the kind's DynamoDB item (table ``alerts``) and publishes; the others only count themselves on the
item (``suppressed``). The next alert of that kind says how many were suppressed before it. Items
expire by TTL a day after their window; a reader treats an expired item as absent anyway.

Kinds in use: ``bulk-chunk-dead-lettered``, ``provider-outage:<service>``, ``dlq-parked:<queue>``,
``worker-exception:<task>``, ``archive-failed:<table>``. Alert texts are masked like log lines.

Failing open: when DynamoDB cannot be reached the alert is published anyway (a duplicate beats a
missed outage), and a failed publish is logged, never raised into the work that hit the error.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException, UpdateError
from pynamodb.models import Model

from wecare import aws, dynamo, metrics
from wecare.logs import mask

logger = logging.getLogger(__name__)

ALERT_WINDOW_SECONDS = 15 * 60
ITEM_TTL = timedelta(days=1)


@dynamo.register
class AlertWindow(Model):
    class Meta:
        table_name = dynamo.table_name("alerts")
        host = dynamo.endpoint()
        region = dynamo.region()
        ttl_attribute = "expires_at"

    key = UnicodeAttribute(hash_key=True)  # "<environment>#<kind>"
    window_until = NumberAttribute()  # epoch seconds: no other alert of this kind before then
    suppressed = NumberAttribute(null=True)  # alerts counted (not sent) in the current window
    reported = NumberAttribute(null=True)  # suppressed count of the window before, told in its alert
    expires_at = TTLAttribute(null=True)


def _open_window(key: str, now: float) -> int | None:
    """Start a new window if none is open: returns the previous window's suppressed count, else None."""
    item = AlertWindow(key)
    try:
        item.update(
            actions=[
                AlertWindow.reported.set(AlertWindow.suppressed | 0),
                AlertWindow.suppressed.set(0),
                AlertWindow.window_until.set(now + ALERT_WINDOW_SECONDS),
                AlertWindow.expires_at.set(ITEM_TTL),
            ],
            condition=AlertWindow.window_until.does_not_exist() | (AlertWindow.window_until <= now),
            add_version_condition=False,
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return int(item.reported or 0)


def _count_suppressed(key: str) -> None:
    AlertWindow(key).update(actions=[AlertWindow.suppressed.add(1)], add_version_condition=False)


def alert_raise(kind: str, *, subject: str, detail: str, now: float | None = None) -> bool:
    """Publish an alert of this kind unless one went out in the last 15 minutes. True if published."""
    now = time.time() if now is None else now
    key = f"{settings.ENVIRONMENT}#{kind}"
    try:
        previous_suppressed = _open_window(key, now)
        if previous_suppressed is None:
            _count_suppressed(key)
            logger.warning("alert %s suppressed (one went out in the last 15 minutes): %s", kind, subject)
            return False
    except PynamoDBException:
        logger.exception("alert %s: de-duplication unavailable, publishing anyway", kind)
        previous_suppressed = 0
    text = mask(detail)
    if previous_suppressed:
        text += f"\n\n{previous_suppressed} more alert(s) of this kind were suppressed in the window before this one."
    text += f"\n\nEnvironment: {settings.ENVIRONMENT}. Kind: {kind}. At most one alert of a kind per 15 minutes."
    logger.error("alert %s: %s", kind, subject, extra={"alertKind": kind, "suppressedBefore": previous_suppressed})
    try:
        aws.client("sns").publish(
            TopicArn=settings.SNS_TOPIC_ARN,
            Subject=mask(f"[WECARE.DIGITAL {settings.ENVIRONMENT}] {subject}")[:100],
            Message=text[:200_000],
            MessageAttributes={"kind": {"DataType": "String", "StringValue": kind[:256]}},
        )
    except Exception:  # an alert must never break the work that hit the error; the log above has it
        logger.exception("alert %s could not be published to %s", kind, settings.SNS_TOPIC_ARN)
        return False
    return True


def celery_task_failure(sender=None, task_id=None, exception=None, einfo=None, **_) -> None:
    """An unhandled exception in a worker task: count it, log it with its stack, alert."""
    name = getattr(sender, "name", "unknown-task")
    metrics.emit("WorkerErrors")
    logger.error(
        "task %s (%s) failed: %s",
        name,
        task_id,
        type(exception).__name__,
        exc_info=(type(exception), exception, exception.__traceback__) if exception is not None else None,
        extra={"errorType": type(exception).__name__, "task": name},
    )
    alert_raise(
        f"worker-exception:{name}",
        subject=f"Worker task {name} failed: {type(exception).__name__}",
        detail=f"Task {name} ({task_id}) raised {type(exception).__name__}: {exception}",
    )


def provider_error_final(error, *, channel: str) -> None:
    """A send failed for good. Transient errors that outlived every retry mean the provider is down."""
    if getattr(error, "permanent", True):
        return
    service = getattr(error, "service", "") or channel
    alert_raise(
        f"provider-outage:{service}",
        subject=f"{service} unavailable: sends failing after retries",
        detail=f"A {channel} send failed after every retry with a transient error: {error}",
    )
