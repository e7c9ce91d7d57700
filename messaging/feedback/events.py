"""Which feedback an SNS notification carries, and handing it to its module."""

from __future__ import annotations

from typing import Any

from messaging.feedback import ses, sms
from messaging.sns import sns_message


def feedback_message(body: Any) -> dict[str, Any] | None:
    """The SES / SMS record an SNS Notification carries, or None if it carries none of ours."""
    return feedback_record(sns_message(body))


def feedback_record(message: Any) -> dict[str, Any] | None:
    """``message`` (a notification's parsed Message) if it is an SES / SMS record of ours, else None."""
    if ses.is_ses_event(message) or sms.is_sms_event(message) or sms.is_sms_inbound(message):
        return message
    return None


def feedback_process(body: dict[str, Any], *, message: Any = None) -> str:
    """Apply the SES or SMS record of a verified notification; what was done, in words ("" if none).
    ``message``: the notification's Message if the caller parsed it already."""
    message = feedback_record(message) if message is not None else feedback_message(body)
    if message is None:
        return ""
    if ses.is_ses_event(message):
        return f"ses {ses.ses_event_apply(message)}"
    if sms.is_sms_event(message):
        return f"sms {sms.sms_event_apply(message)}"
    return f"sms inbound {sms.sms_inbound_apply(message)}"
