"""One module per provider; each turns the provider's errors into our own `ChannelError`.

- `messaging.channels.whatsapp`: AWS End User Messaging Social (`socialmessaging`).
- `messaging.channels.sms`: AWS End User Messaging SMS (`pinpoint-sms-voice-v2`), pool origination.
- `messaging.channels.email`: Amazon SES v2.

A channel module builds a `ProviderRequest` (service, operation, parameters) and `execute()`s it.
Building and executing are separate so DRY_RUN can log exactly the request LIVE would make.

Retries: provider clients are made with botocore ``max_attempts=1`` (`provider_client`), so botocore
never retries a send on its own; the outbound task retries transient errors at most
OUTBOUND_MAX_RETRIES times (see messaging.services). A message therefore costs at most
1 + OUTBOUND_MAX_RETRIES provider calls per operation (4 by default).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from wecare import aws

logger = logging.getLogger(__name__)

# Error codes that mean "try again later", whatever the service. HTTP 429 and 5xx are transient too.
TRANSIENT_CODES = frozenset(
    {
        "ThrottledRequestException",  # socialmessaging
        "ThrottlingException",  # sms-voice-v2, generic
        "Throttling",
        "TooManyRequestsException",  # sesv2
        "RequestLimitExceeded",
        "InternalServiceException",  # socialmessaging 500
        "DependencyException",  # socialmessaging 502 (Meta unavailable)
        "InternalServerException",  # sms-voice-v2
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class ChannelError(Exception):
    """A provider call failed. ``permanent`` errors are never retried (a bad number, a rejected template)."""

    def __init__(self, message: str, *, permanent: bool, code: str = "", request_id: str = "", service: str = ""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code or ("ProviderError" if permanent else "TransientError")
        self.request_id = request_id
        self.service = service

    def as_details(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
            "permanent": self.permanent,
            "service": self.service,
        }

    def log_fields(self, operation: str = "") -> dict[str, Any]:
        """The structured fields of a provider-error log line (requirement 14.3)."""
        return {
            "providerRequestId": self.request_id,
            "errorType": self.code,
            "permanent": self.permanent,
            "service": self.service,
            "operation": operation,
        }

    def __str__(self) -> str:
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.service or 'provider'} {self.code}: {self.message}{rid}"


@dataclass
class ProviderRequest:
    """One provider API call: what DRY_RUN logs and LIVE executes."""

    service: str  # boto3 client name
    operation: str  # API operation name, e.g. SendWhatsAppMessage
    params: dict[str, Any]
    # Parameters as they should appear in a log (the WhatsApp message blob decoded to JSON).
    loggable: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return xform_name(self.operation)

    def describe(self) -> str:
        return json.dumps(
            {"service": self.service, "operation": self.operation, "params": self.loggable or self.params},
            default=str,
            ensure_ascii=False,
            sort_keys=True,
        )


def provider_client(service: str):
    """The boto3 client used for provider calls: botocore makes one attempt, the task retries."""
    return aws.client(service, max_attempts=1)


def error_from_client_error(exc: ClientError, service: str) -> ChannelError:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error.get("Code", "") or "Unknown"
    status = int(meta.get("HTTPStatusCode") or 0)
    message = error.get("Message", "") or str(exc)
    reason = exc.response.get("Reason")  # sms-voice-v2 adds a Reason next to Error
    if reason:
        message = f"{message} [{reason}]"
    transient = code in TRANSIENT_CODES or status == 429 or status >= 500
    return ChannelError(
        message, permanent=not transient, code=code, request_id=meta.get("RequestId", ""), service=service
    )


def execute(request: ProviderRequest) -> dict[str, Any]:
    """Make the call; any failure comes out as a ChannelError with the permanent flag set right."""
    client = provider_client(request.service)
    try:
        return getattr(client, request.method)(**request.params)
    except ClientError as exc:
        error = error_from_client_error(exc, request.service)
        logger.warning("provider error %s", error, exc_info=exc, extra=error.log_fields(request.operation))
        raise error from exc
    except ParamValidationError as exc:
        # Our request is malformed: retrying cannot help.
        raise ChannelError(str(exc), permanent=True, code="ParamValidationError", service=request.service) from exc
    except BotoCoreError as exc:
        # Connection refused/reset, timeouts: the provider may well be back in a moment.
        error = ChannelError(str(exc), permanent=False, code=type(exc).__name__, service=request.service)
        logger.warning("provider error %s", error, exc_info=exc, extra=error.log_fields(request.operation))
        raise error from exc
