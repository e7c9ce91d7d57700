"""Inbound WhatsApp: what the platform does with a verified SNS notification from EUM Social.

- ``payload``: decoding the SNS body, the EUM envelope and Meta's entry; one message's type and content.
- ``messages``: each inbound message stored exactly once (DynamoDB claim + unique wamid), its
  contact, the 24-hour window (lastInboundMessageAt, forward only), opt-out/opt-in keywords, and the
  configured courtesies (mark as read, 👍) through the outbound service.
- ``media``: the message's file copied into the media bucket at {MEDIA_INCOMING_PREFIX}{messageId}.{ext}.
- ``statuses``: status events move our outbound messages forward only.
- ``events``: stored notifications (InboundEvent): received by the webhook (one INSERT), processed
  in batches by the Celery tasks (messaging.tasks.inbound), dead-lettered after the retries,
  replayed from inbound-dlq by ``handle_dlq_payload`` — the same code as the first time.
- ``outbox``: the relay from stored events to the inbound queue (SendMessageBatch), which keeps
  them while the broker is down.
"""

from messaging.inbound.events import (
    BatchSummary,
    ProcessSummary,
    handle_dlq_payload,
    inbound_event_fail,
    inbound_event_process,
    inbound_event_receive,
    inbound_events_process,
    notification_process,
)
from messaging.inbound.media import MediaUnavailable, extension_for, media_fetch
from messaging.inbound.messages import contact_touch_inbound, inbound_message_receive
from messaging.inbound.payload import (
    InboundPayloadError,
    ParsedMessage,
    decode_notification,
    is_eum_event,
    parse_message,
    phone_number_id_from_arn,
    receiving_phone_number_id,
)
from messaging.inbound.statuses import status_apply, statuses_apply

__all__ = [
    "BatchSummary",
    "InboundPayloadError",
    "MediaUnavailable",
    "ParsedMessage",
    "ProcessSummary",
    "contact_touch_inbound",
    "decode_notification",
    "extension_for",
    "handle_dlq_payload",
    "inbound_event_fail",
    "inbound_event_process",
    "inbound_event_receive",
    "inbound_events_process",
    "inbound_message_receive",
    "is_eum_event",
    "media_fetch",
    "notification_process",
    "parse_message",
    "phone_number_id_from_arn",
    "receiving_phone_number_id",
    "status_apply",
    "statuses_apply",
]
