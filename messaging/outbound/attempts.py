"""Provider attempts as rows (`messaging.models.ProviderAttempt`): the evidence of every provider call.

A row is written as "started" before the call and finished right after it with the outcome, the
duration, the provider's request and message ids or its error. A worker that dies between the two
leaves a started row: the provider may have been called, so nobody may send that message again
blindly. `provider_was_called(message_id)` is the question bulk and the DLQ ask.
"""

from __future__ import annotations

import time

from django.db import connection
from django.utils import timezone

from messaging.channels import ChannelError, ProviderRequest, ProviderResult
from messaging.models import Message, ProviderAttempt
from messaging.outbound.request import SendRequest
from messaging.safety import safety_consent_current

Outcome = ProviderAttempt.Outcome


def attempt_start(
    message: Message, request: ProviderRequest, *, while_consented: SendRequest | None = None
) -> ProviderAttempt | None:
    """Write the attempt's "started" row. With ``while_consented`` (a send to a person) the row is
    written only if the gate's consent rules still hold for that request, in the same statement
    (INSERT ... SELECT ... WHERE EXISTS): None means consent was withdrawn, and nothing may be sent."""
    started_at = timezone.now()
    if while_consented is None:
        attempt = ProviderAttempt.objects.create(
            message_id=message.pk, service=request.service, operation=request.operation, started_at=started_at
        )
    else:
        attempt = _insert_if_consented(message, request, while_consented, started_at)
        if attempt is None:
            return None
    attempt._started = time.monotonic()  # the duration is measured, not derived from two clocks
    return attempt


def _insert_if_consented(
    message: Message, request: ProviderRequest, send_request: SendRequest, started_at
) -> ProviderAttempt | None:
    consent_sql, consent_params = safety_consent_current(send_request).values("pk").query.sql_with_params()
    message_fk = ProviderAttempt._meta.get_field("message")
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(name)
        for name in (
            "message_id",
            "service",
            "operation",
            "started_at",
            "outcome",
            "provider_request_id",
            "provider_message_id",
            "error_code",
            "error_text",
        )
    )
    sql = (
        f"INSERT INTO {quote(ProviderAttempt._meta.db_table)} ({columns}) "
        f"SELECT %s, %s, %s, %s, %s, '', '', '', '' WHERE EXISTS ({consent_sql}) RETURNING {quote('id')}"
    )
    params = [
        message_fk.get_db_prep_value(message.pk, connection),
        request.service,
        request.operation,
        connection.ops.adapt_datetimefield_value(started_at),
        Outcome.STARTED,
        *consent_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return ProviderAttempt(
        id=row[0],
        message_id=message.pk,
        service=request.service,
        operation=request.operation,
        started_at=started_at,
    )


def attempt_finish(
    attempt: ProviderAttempt,
    *,
    result: ProviderResult | None = None,
    provider_message_id: str = "",
    error: ChannelError | None = None,
) -> None:
    fields = attempt_finish_fields(attempt, result=result, provider_message_id=provider_message_id, error=error)
    ProviderAttempt.objects.filter(pk=attempt.pk).update(**fields)


def attempt_finish_fields(
    attempt: ProviderAttempt,
    *,
    result: ProviderResult | None = None,
    provider_message_id: str = "",
    error: ChannelError | None = None,
) -> dict:
    """What `attempt_finish` writes (for a caller that writes it together with the message)."""
    fields: dict = {
        "finished_at": timezone.now(),
        "duration_ms": int((time.monotonic() - getattr(attempt, "_started", time.monotonic())) * 1000),
    }
    if error is not None:
        fields.update(
            outcome=Outcome.PERMANENT_ERROR if error.permanent else Outcome.TRANSIENT_ERROR,
            provider_request_id=error.request_id[:128],
            error_code=(error.provider_code or error.code)[:64],
            error_text=error.message[:2000],
        )
    elif result is not None:
        fields.update(
            outcome=Outcome.DRY_RUN if result.dry_run else Outcome.SUCCEEDED,
            provider_request_id=result.request_id[:128],
            provider_message_id=provider_message_id[:256],
        )
    return fields


def attempt_crashed(attempt: ProviderAttempt, exc: BaseException) -> None:
    """Something that is not a provider answer broke the call: the outcome stays "started" (unknown)."""
    ProviderAttempt.objects.filter(pk=attempt.pk).update(error_text=f"{type(exc).__name__}: {exc}"[:2000])


def provider_was_called(message_id) -> bool:
    """Data, not inference: a provider call was made (or may have been, if no answer was recorded)."""
    return ProviderAttempt.objects.filter(message_id=message_id).exclude(outcome=Outcome.DRY_RUN).exists()
