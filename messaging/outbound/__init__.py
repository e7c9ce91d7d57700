"""Outbound WhatsApp, SMS and email: from a send request to a provider call. Mirrors messaging.inbound.

- ``request``: the one `SendRequest` (built once by `send_request_build`, judged by the gate) and
  `OutgoingMedia`.
- ``send``: `message_send(request, ...)`: the gate, the stored message (queued), the task on commit.
- ``media``: `media_upload`: a file in the private media bucket, sent in as many messages as wanted.
- ``deliver``: `message_deliver(message_id)`: claim, gate again (tier reserved), the channel's provider
  (`messaging.channels.provider_for`), consent re-checked right before the call, the outcome recorded.
- ``attempts``: every provider call as a `ProviderAttempt` row; `provider_was_called`.
- ``courtesy``: reactions and read receipts on inbound WhatsApp messages.
- ``replay``: the outbound-dlq handler.

Callers import from `messaging.services` (the public interface). This package's __init__ imports
nothing on purpose: messaging.safety imports ``messaging.outbound.request`` and must not pull in the
modules that import the gate.
"""
