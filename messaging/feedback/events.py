"""Which feedback an SNS notification carries, and handing it to its module."""

from __future__ import annotations

import json
from typing import Any

from messaging.feedback import ses, sms


def feedback_message(body: Any) -> dict[str, Any] | None:
    """The SES / SMS record an SNS Notification carries, or None if it carries none of ours."""
    try:
        message = json.loads(body.get("Message", "")) if isinstance(body, dict) else None
    except (TypeError, ValueError):
        return None
    if ses.is_ses_event(message) or sms.is_sms_event(message) or sms.is_sms_inbound(message):
        return message
    return None


def feedback_process(body: dict[str, Any]) -> str:
    """Apply the SES or SMS record of a verified notification; what was done, in words ("" if none)."""
    message = feedback_message(body)
    if message is None:
        return ""
    if ses.is_ses_event(message):
        return f"ses {ses.ses_event_apply(message)}"
    if sms.is_sms_event(message):
        return f"sms {sms.sms_event_apply(message)}"
    return f"sms inbound {sms.sms_inbound_apply(message)}"
