"""Provider events in their real formats, as the provider documentation shows them (the source is noted
on each). Tests take a deep copy and set only what ties the event to their data (our message id tag,
the SES message id, the addresses, the SMS message id); every other field stays as published.

Each sample is published to SNS as the ``Message`` string of a Notification, and reaches
/webhooks/sns/ through the same topic and verification as EUM Social's events.
"""

from __future__ import annotations

import copy
import json
from typing import Any

# --- Amazon SES event publishing to SNS -------------------------------------------------------------
# Source: "Examples of event data that Amazon SES publishes to Amazon SNS",
# https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html
# (the `mail` object is the same on every event type; its `tags` carry the configuration set's and
# our own EmailTags, e.g. wecare-message-id).
SES_MAIL = {
    "timestamp": "2017-08-05T00:40:02.012Z",
    "source": "Sender Name <sender@example.com>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
    "sendingAccountId": "123456789012",
    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
    "destination": ["recipient@example.com"],
    "headersTruncated": False,
    "headers": [
        {"name": "From", "value": "Sender Name <sender@example.com>"},
        {"name": "To", "value": "recipient@example.com"},
        {"name": "Subject", "value": "Message sent from Amazon SES"},
        {"name": "MIME-Version", "value": "1.0"},
        {
            "name": "Content-Type",
            "value": 'multipart/alternative; boundary="----=_Part_7307378_1629847660.1516840721503"',
        },
    ],
    "commonHeaders": {
        "from": ["Sender Name <sender@example.com>"],
        "to": ["recipient@example.com"],
        "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "subject": "Message sent from Amazon SES",
    },
    "tags": {
        "ses:configuration-set": ["ConfigSet"],
        "ses:source-ip": ["192.0.2.0"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["ses_user"],
    },
}

SES_BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
    "mail": SES_MAIL,
}

SES_COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "complaintSubType": None,
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/60.0.3112.90 Safari/537.36",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2017-08-05T00:41:02.669Z",
    },
    "mail": SES_MAIL,
}

SES_DELIVERY = {
    "eventType": "Delivery",
    "mail": SES_MAIL,
    "delivery": {
        "timestamp": "2016-10-19T23:21:04.133Z",
        "processingTimeMillis": 11893,
        "recipients": ["recipient@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "mta.example.com",
    },
}

SES_REJECT = {"eventType": "Reject", "mail": SES_MAIL, "reject": {"reason": "Bad content"}}

SES_DELIVERY_DELAY = {
    "eventType": "DeliveryDelay",
    "mail": SES_MAIL,
    "deliveryDelay": {
        "timestamp": "2020-06-16T00:15:40.641Z",
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2020-06-16T00:25:40.914Z",
        "delayedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "status": "4.4.1",
                "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host",
            }
        ],
    },
}

# --- AWS End User Messaging SMS: configuration set event destination (SNS) --------------------------
# Source: "Example SMS event data", https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-format.html
# Event types: https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-types.html
SMS_EVENT = {
    "eventType": "TEXT_SUCCESSFUL",
    "eventVersion": "1.0",
    "eventTimestamp": 1686975103470,
    "isFinal": True,
    "originationPhoneNumber": "+12065550152",
    "destinationPhoneNumber": "+14255550156",
    "isInternationalSend": False,
    "mcc": "310",
    "mnc": "800",
    "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
    "messageRequestTimestamp": 1686975103170,
    "messageEncoding": "GSM",
    "messageType": "PROMOTIONAL",
    "messageStatus": "SUCCESSFUL",
    "messageStatusDescription": "Message has been accepted by phone carrier",
    "context": {"account": "bar"},
    "totalMessageParts": 1,
    "totalMessagePrice": 0.09582,
    "totalCarrierFee": 0.0,
}

# --- AWS End User Messaging SMS: two-way SMS to an SNS topic ----------------------------------------
# Source: "Example of a two-way SMS message payload for Amazon SNS topics",
# https://docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html
SMS_INBOUND = {
    "originationNumber": "+14255550182",
    "destinationNumber": "+12125550101",
    "messageKeyword": "JOIN",
    "messageBody": "EXAMPLE",
    "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}

# --- WhatsApp (Meta Cloud API) failed status with an error, as EUM Social relays it ------------------
# Source: Meta's "Status messages" webhook reference and error codes
# (developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#message-failed,
# developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes); the EUM envelope is the one
# of /work/shared/reference/fixtures/sns-notification-status-failed.json.
WHATSAPP_FAILED_STATUS = {
    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBQjI1MDY3QTQ2RjQzQzJBNkMA",
    "status": "failed",
    "timestamp": "1674495838",
    "recipient_id": "16505551234",
    "errors": [
        {
            "code": 131050,
            "title": "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
            "messages on WhatsApp from your business",
            "message": "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
            "messages on WhatsApp from your business",
            "error_data": {"details": "Unable to deliver the message. This recipient has chosen to stop "
                           "receiving marketing messages on WhatsApp from your business"},
        }
    ],
}  # fmt: skip

WHATSAPP_ERROR_TITLES = {
    131026: "Message undeliverable",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: WHATSAPP_FAILED_STATUS["errors"][0]["title"],
}


def sample(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``template`` with ``changes``; ``bounce__bounceType`` reaches inside ``bounce``."""
    event = copy.deepcopy(template)
    for dotted, value in changes.items():
        target = event
        *path, last = dotted.split("__")
        for key in path:
            target = target[key]
        target[last] = value
    return event


def ses_event(template: dict[str, Any], *, message_id: str, ses_message_id: str, address: str, **changes) -> str:
    """An SES event record about our message ``message_id`` to ``address``, as the SNS Message string."""
    event = sample(template, **changes)
    event["mail"]["messageId"] = ses_message_id
    event["mail"]["destination"] = [address]
    event["mail"]["tags"]["wecare-message-id"] = [message_id]
    for key in ("bounce", "complaint", "deliveryDelay"):
        for field in ("bouncedRecipients", "complainedRecipients", "delayedRecipients"):
            for recipient in (event.get(key) or {}).get(field, []):
                recipient["emailAddress"] = address
    if "delivery" in event:
        event["delivery"]["recipients"] = [address]
    return json.dumps(event)
