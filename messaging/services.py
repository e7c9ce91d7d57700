"""The outbound interface of the messaging app. Every send in the platform goes through here.

The code lives in the `messaging.outbound` package (see its modules); this module is the one
import callers need (the API, the admin, the pages, bulk, the DLQ, AI replies):

- ``send_request_build(*, contact_id, channel, text="", media=None, media_type="", template_name="",
  template_language="", template_parameters=None, subject="", html="", origination_phone_number_id="",
  reaction_to="", contact=None) -> SendRequest``: the one request object (frozen), with the message
  type worked out and the WhatsApp number picked (explicit and allowlisted, else the number the
  contact last wrote to, else the first of WHATSAPP_PHONE_NUMBER_IDS).
- ``message_send(request, *, requested_by=None, enqueue=True, audit=True, now=None, replay_of=None)
  -> Message``: the gate judges the request (raises ``SafetyRefusal(code, reason)``, HTTP 422), media
  goes to S3 (``StorageUnavailable``, 503), the Message is stored queued and, on commit, the Celery task
  ``messaging.tasks.outbound.deliver_message`` is enqueued. ``enqueue=False``: the caller delivers
  (bulk workers); ``audit=False``: no per-message audit entry (bulk audits the job).
- ``message_deliver(message_id, *, now=None) -> Message``: claim, gate again (tier reserved), the
  channel's provider: prepare, rate-limit tokens, consent re-checked in one query, the call, each
  call a ProviderAttempt row. Final outcome "sent" (``dry_run=True`` in DRY_RUN) or "failed"
  (``error_code`` = the gate's or the provider's code; then also on outbound-dlq), or raises
  ``DeliveryDeferred(countdown, reason)``: still queued, try again after ``countdown``. A message is
  never failed for a rate limit.
- ``message_fail_unexpected(message_id, *, error)``: a delivery crashed outside the provider call.
- ``media_upload(*, data, content_type, filename="", size=None) -> OutgoingMedia``.
- ``whatsapp_react(*, message, emoji)``, ``whatsapp_mark_as_read(*, message)``: courtesies.
- ``handle_outbound_dlq_payload(payload)``: the outbound-dlq replay (a new message, gate again).
- ``provider_was_called(message_id) -> bool``: from the ProviderAttempt rows.

Retries: transient provider errors are retried after `wecare.retry.backoff_seconds` (base
OUTBOUND_RETRY_BASE_SECONDS, cap OUTBOUND_RETRY_MAX_SECONDS), at most OUTBOUND_MAX_RETRIES (3) times;
botocore makes one attempt per call, so a message costs at most four provider calls. Permanent errors
(classified per provider, e.g. WhatsApp 131026 undeliverable) are not retried.

Send modes: SEND_MODE is decided in one place, the provider boundary `messaging.channels.base.call`:
in DRY_RUN every step runs (gate, tier, rate limits, media to our own bucket, attempt rows with
outcome "dry_run") except the provider call itself, which is logged in full; the message is marked
``dry_run=True``, status "sent", no provider id. LIVE (production only) calls the providers.
"""

from __future__ import annotations

from messaging.outbound.attempts import provider_was_called
from messaging.outbound.courtesy import whatsapp_mark_as_read, whatsapp_react
from messaging.outbound.deliver import (
    CLAIM_SECONDS,
    INFRASTRUCTURE_MAX_RETRIES,
    DeliveryDeferred,
    message_deliver,
    message_fail_unexpected,
    retry_countdown,
)
from messaging.outbound.media import media_upload
from messaging.outbound.replay import MAX_REPLAYS, handle_outbound_dlq_payload
from messaging.outbound.request import OutgoingMedia, SendRequest, send_request_build, whatsapp_phone_number_for
from messaging.outbound.send import message_send

__all__ = [
    "CLAIM_SECONDS",
    "INFRASTRUCTURE_MAX_RETRIES",
    "MAX_REPLAYS",
    "DeliveryDeferred",
    "OutgoingMedia",
    "SendRequest",
    "handle_outbound_dlq_payload",
    "media_upload",
    "message_deliver",
    "message_fail_unexpected",
    "message_send",
    "provider_was_called",
    "retry_countdown",
    "send_request_build",
    "whatsapp_mark_as_read",
    "whatsapp_phone_number_for",
    "whatsapp_react",
]
