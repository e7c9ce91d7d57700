"""The provider contract, and the boundary every provider call passes (where DRY_RUN is decided).

A channel is one module with one `Provider` subclass (registered in `messaging.channels`):

- ``buckets(delivery)``: the rate-limit buckets one send takes a token from;
- ``prepare(delivery)``: a call to make before the send (WhatsApp: upload the media file), or None;
  ``prepared(delivery, result)`` keeps what it returned (the media id);
- ``send_request(delivery)``: the provider request of the send (service, operation, parameters);
- ``sent(result)``: the provider's message id of a send, checked;
- ``classify(exc)``: a provider error as our `ChannelError`, permanent (never retried) or transient,
  with the provider's own code where it says more than AWS's;
- ``record_sent(message_ids, dry_run=...)``: what the channel keeps of sends once they are recorded
  (voice: their VoiceCall rows), or nothing.

`call(request)` is the boundary. It alone decides DRY_RUN (``settings.SEND_MODE != "LIVE"``): then a
request that is not a plain read (`READ_ONLY_OPERATIONS`) is logged in full and never made, whatever
the caller passes; there is no flag to override it. Everything above it (the delivery, the
courtesies, bulk) only reads ``ProviderResult.dry_run``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from django.conf import settings

from wecare import aws
from wecare.errors import PlatformError

if TYPE_CHECKING:
    from datetime import datetime

    from messaging.models import MediaFile, Message
    from messaging.outbound.request import SendRequest
    from messaging.ratelimit import Bucket
    from messaging.safety import Clearance

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

# The only operations DRY_RUN lets through: reads that change nothing and reach nobody.
READ_ONLY_OPERATIONS = frozenset(
    {
        ("socialmessaging", "ListLinkedWhatsAppBusinessAccounts"),
        ("socialmessaging", "ListWhatsAppMessageTemplates"),
        ("socialmessaging", "GetWhatsAppMessageTemplate"),
        ("socialmessaging", "GetLinkedWhatsAppBusinessAccount"),
    }
)


class ChannelError(PlatformError):
    """A provider call failed. ``permanent`` errors are never retried (a bad number, a rejected template)."""

    code = "PROVIDER_ERROR"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str = "",
        request_id: str = "",
        service: str = "",
        provider_code: str = "",
    ):
        super().__init__(
            message, code=code or ("ProviderError" if permanent else "TransientError"), permanent=permanent
        )
        self.message = message
        self.request_id = request_id
        self.service = service
        # The provider's own, more specific code where it gave one (Meta's 131026 inside an AWS error).
        self.provider_code = provider_code

    def as_details(self) -> dict[str, Any]:
        # The provider's own code is on the ProviderAttempt row (error_code); the message keeps AWS's.
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
            "providerCode": self.provider_code,
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

    @property
    def read_only(self) -> bool:
        return (self.service, self.operation) in READ_ONLY_OPERATIONS

    def describe(self) -> str:
        return json.dumps(
            {"service": self.service, "operation": self.operation, "params": self.loggable or self.params},
            default=str,
            ensure_ascii=False,
            sort_keys=True,
        )


@dataclass(frozen=True)
class ProviderResult:
    """What a call returned: the response, or nothing at all when DRY_RUN stopped it."""

    dry_run: bool
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        return self.response.get("ResponseMetadata", {}).get("RequestId", "")


@dataclass
class Delivery:
    """One send in progress: the stored message, the gate's clearance and what preparing it found."""

    message: Message
    clearance: Clearance
    now: datetime
    request: SendRequest  # the request the gate judged (the consent re-check reads it)
    media_file: MediaFile | None = None
    media_id: str = ""  # WhatsApp: a Meta media id this number may send


def provider_client(service: str):
    """The boto3 client used for provider calls: botocore makes one attempt, the task retries."""
    return aws.client(service, max_attempts=1)


def dry_run_now() -> bool:
    """THE DRY_RUN decision (read at every call, so a test or a settings change takes effect at once)."""
    return settings.SEND_MODE != "LIVE"


def _client_error_fields(exc: ClientError) -> tuple[str, int, str, str]:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error.get("Code", "") or "Unknown"
    status = int(meta.get("HTTPStatusCode") or 0)
    message = error.get("Message", "") or str(exc)
    reason = exc.response.get("Reason")  # sms-voice-v2 adds a Reason next to Error
    if reason:
        message = f"{message} [{reason}]"
    return code, status, message, meta.get("RequestId", "")


def error_from_client_error(exc: ClientError, service: str) -> ChannelError:
    """The generic rule: throttling, 429 and 5xx are transient; any other answer is permanent."""
    code, status, message, request_id = _client_error_fields(exc)
    transient = code in TRANSIENT_CODES or status == 429 or status >= 500
    return ChannelError(message, permanent=not transient, code=code, request_id=request_id, service=service)


def call(request: ProviderRequest, *, classify=None) -> ProviderResult:
    """Make one provider call, unless DRY_RUN: then log it and return ``ProviderResult(dry_run=True)``.

    Any failure comes out as a ChannelError (``classify(exc)`` for a ClientError, the provider's rule).
    """
    if dry_run_now() and not request.read_only:
        logger.info("DRY_RUN would call %s", request.describe())
        return ProviderResult(dry_run=True)
    client = provider_client(request.service)
    try:
        return ProviderResult(dry_run=False, response=getattr(client, request.method)(**request.params))
    except ClientError as exc:
        error = (classify or (lambda e: error_from_client_error(e, request.service)))(exc)
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


def execute(request: ProviderRequest) -> dict[str, Any]:
    """`call` for a read (templates, linked accounts): the response ({} if DRY_RUN stopped a write)."""
    return call(request).response


class Provider:
    """One channel's provider (see the module docstring). Subclasses set ``channel`` and ``service``."""

    channel: ClassVar[str]
    service: ClassVar[str]
    send_operation: ClassVar[str]
    # Provider codes (AWS error code or a more specific one, e.g. Meta's) that settle permanence.
    permanent_codes: ClassVar[frozenset[str]] = frozenset()
    transient_codes: ClassVar[frozenset[str]] = frozenset()

    def buckets(self, delivery: Delivery) -> list[Bucket]:
        raise NotImplementedError

    def prepare(self, delivery: Delivery) -> ProviderRequest | None:
        return None

    def prepared(self, delivery: Delivery, result: ProviderResult) -> None:
        """Keep what the preparing call returned (only called when ``prepare`` gave a request)."""

    def send_request(self, delivery: Delivery) -> ProviderRequest:
        raise NotImplementedError

    def sent(self, result: ProviderResult) -> str:
        """The provider's message id of a successful send ("" in DRY_RUN); a missing one is transient."""
        if result.dry_run:
            return ""
        message_id = result.response.get("MessageId") or result.response.get("messageId")
        if not message_id:
            raise ChannelError(f"{self.send_operation} returned no message id", permanent=False, service=self.service)
        return message_id

    def provider_code(self, exc: ClientError) -> str:
        """A more specific code than AWS's that the provider put in its answer (none by default)."""
        return ""

    def classify(self, exc: ClientError) -> ChannelError:
        code, status, message, request_id = _client_error_fields(exc)
        specific = self.provider_code(exc)
        if specific in self.permanent_codes or code in self.permanent_codes:
            permanent = True
        elif specific in self.transient_codes or code in self.transient_codes:
            permanent = False
        else:
            permanent = not (code in TRANSIENT_CODES or status == 429 or status >= 500)
        return ChannelError(
            message, permanent=permanent, code=code, request_id=request_id, service=self.service, provider_code=specific
        )

    def call(self, request: ProviderRequest) -> ProviderResult:
        return call(request, classify=self.classify)

    def record_sent(self, message_ids: list, *, dry_run: bool) -> None:
        """Keep what the channel records of sends once their messages are stored as sent (voice: a
        VoiceCall row each), one by one or a bulk batch at once. Nothing (and no query) by default. A
        failure here is logged by the caller, never a reason to send again."""
