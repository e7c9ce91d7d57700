"""The one hook that makes links personal: every outbound message, one to one or bulk, passes here
after the gate has said yes and before it is stored, whatever its channel (links.personal)."""

from __future__ import annotations

from contacts.models import Channel
from links.personal import personalise
from messaging.channels import sms as sms_channel
from messaging.models import Message, MessageType

# A template's body is Meta's (its parameters are sent, not the stored text); a reaction is an emoji.
NOT_REWRITTEN = (MessageType.TEMPLATE, MessageType.REACTION)


def links_personalise(messages: list[Message], *, bulk_job_id=None) -> None:
    """Rewrite our short links in these unsaved, cleared messages into per-recipient links (in place),
    inside the transaction that stores them. An SMS's part count follows its new length."""
    candidates = [m for m in messages if m.message_type not in NOT_REWRITTEN]
    if not candidates or not personalise(candidates, bulk_job_id=bulk_job_id):
        return
    for message in candidates:
        if message.channel == Channel.SMS:
            message.segments = sms_channel.segment_count(message.content).count
