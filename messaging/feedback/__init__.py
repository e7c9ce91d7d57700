"""Delivery feedback and suppression: what providers tell us after a send, and what we stop sending.

- ``unsubscribe``: the signed link, List-Unsubscribe / One-Click headers and the withdrawal they ask for.
- ``ses``: SES events (bounce, complaint, delivery, reject, delay) from the configuration set's SNS
  destination: message status, suppression of hard-bounced, complaining and soft-bouncing addresses.
- ``sms``: EUM SMS delivery receipts (delivered / failed with the carrier's reason; invalid and
  blocked numbers suppressed) and two-way SMS (STOP withdraws SMS consent).
- ``whatsapp``: permanent WhatsApp failure codes (131026, 131049, 131050) → suppression per category.
- ``suppressions``: the Suppression rows (add, Admin lift, reads for the gate and the contact page).

Everything arrives on the one verified SNS endpoint (/webhooks/sns/) and topic, stored as an
InboundEvent like EUM Social's events; `events.feedback_process` is where messaging.inbound hands over
the notifications that are not EUM Social events.
"""
