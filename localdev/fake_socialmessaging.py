"""A local fake of AWS End User Messaging Social (and of SendTextMessage of EUM SMS), speaking the real
wire protocols, for benchmarks and end-to-end runs. moto has neither service.

boto3 reaches it through AWS_ENDPOINT_URL_SOCIALMESSAGING (and AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2)
set to its URL. It answers like the service would (rest-json for socialmessaging, json-1.0 with
X-Amz-Target for sms-voice-v2), checks the required parameters, decodes the WhatsApp message blob,
and records every call with the time it arrived, so a benchmark can measure the rate the provider
really saw. Signatures are not checked.

    POST /v1/whatsapp/send            SendWhatsAppMessage       -> {"messageId": "<uuid>"}
    POST /v1/whatsapp/media           PostWhatsAppMessageMedia  -> {"mediaId": "<digits>"}
    POST /v1/whatsapp/media/get       GetWhatsAppMessageMedia   -> {"mimeType", "fileSize"}, the file
                                      written to S3 at {key prefix}{mediaId}.{ext} (needs an S3 endpoint)
    GET  /v1/whatsapp/waba/list       ListLinkedWhatsAppBusinessAccounts
    GET  /v1/whatsapp/template/list   ListWhatsAppMessageTemplates (?id=waba-...)
    GET  /v1/whatsapp/template        GetWhatsAppMessageTemplate (?id=...&metaTemplateId=...)
    POST /  X-Amz-Target: PinpointSMSVoiceV2.SendTextMessage -> {"MessageId": "<uuid>"}
    POST /  X-Amz-Target: PinpointSMSVoiceV2.SendVoiceMessage -> {"MessageId": "<uuid>"}
    POST /  X-Amz-Target: PinpointSMSVoiceV2.SendRcsMessage   -> {"MessageId": "<uuid>"}
    GET  /_fake/stats, POST /_fake/reset (for a benchmark in another process)
    POST /_fake/media                 a file "on Meta's side" (what a customer sent): body = the bytes,
                                      Content-Type = its type -> {"mediaId": "<digits>"}

Usage in-process: ``with FakeSocialMessaging(latency=0.05) as fake: ... fake.url ... fake.sends``;
or standalone: ``python localdev/fake_socialmessaging.py --port 8765 --latency 0.05``.
`make run` starts it standalone with ``--samples`` (a linked WABA with approved sample templates) and
``--s3-endpoint`` (the local moto, where GetWhatsAppMessageMedia writes inbound files); it listens on
127.0.0.1 only and refuses an S3 endpoint that is not on this machine.
Failures can be injected: ``fake.fail_next("ThrottledRequestException", 429, count=2)``.
``fake.sms_voice_events(call)`` gives the events EUM SMS would publish for a voice or RCS send (the
configuration set's event format: a call initiated, ringing, answered, completed; an RCS message
delivered, read), for a test or `make run` to deliver through SNS.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_MEDIA_BYTES = 16 * 1024 * 1024  # WhatsApp's own limit for video and audio


@dataclass
class Call:
    operation: str
    at: float  # time.time() when the request arrived
    params: dict
    message: dict | None = None  # decoded Meta message JSON of SendWhatsAppMessage
    message_id: str = ""  # the MessageId answered (sms-voice-v2 sends)


@dataclass
class FakeState:
    latency: float = 0.05
    calls: list[Call] = field(default_factory=list)
    failures: deque = field(default_factory=deque)  # (operation or None, code, status)
    linked_accounts: list[dict] = field(default_factory=list)
    templates: dict[str, list[dict]] = field(default_factory=dict)  # waba id -> summaries
    definitions: dict[str, dict] = field(default_factory=dict)  # metaTemplateId -> Meta template JSON
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # mediaId -> (bytes, mime type)
    s3_endpoint: str = ""  # where GetWhatsAppMessageMedia writes (a local moto)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm holds the
    # body back until the client's delayed ACK (tens of ms per call on a kept-alive connection).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):  # quiet
        pass

    # --- plumbing ---

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: dict, *, error_type: str = "", content_type: str = "application/json"):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, *, json10: bool = False):
        if json10:
            self._reply(status, {"__type": code, "message": message}, content_type="application/x-amz-json-1.0")
        else:
            self._reply(status, {"message": message}, error_type=code)

    def _injected_failure(self, operation: str) -> tuple[str, int] | None:
        state = self.server.state
        with state.lock:
            if state.failures and state.failures[0][0] in (None, operation):
                _op, code, status = state.failures.popleft()
                return code, status
        return None

    def _record(self, operation: str, params: dict, message: dict | None = None, message_id: str = "") -> None:
        state = self.server.state
        with state.lock:
            state.calls.append(Call(operation, time.time(), params, message, message_id))

    # --- routes ---

    def do_GET(self):  # noqa: N802 - http.server's name
        arrived = time.time()
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        if url.path == "/_fake/stats":
            return self._reply(200, self.server.stats())
        self._sleep_until(arrived)
        if url.path == "/v1/whatsapp/waba/list":
            self._record("ListLinkedWhatsAppBusinessAccounts", query)
            return self._reply(200, {"linkedAccounts": state.linked_accounts})
        if url.path == "/v1/whatsapp/template/list":
            if "id" not in query:
                return self._error(400, "ValidationException", "id is required")
            self._record("ListWhatsAppMessageTemplates", query)
            return self._reply(200, {"templates": state.templates.get(query["id"], [])})
        if url.path == "/v1/whatsapp/template":
            self._record("GetWhatsAppMessageTemplate", query)
            definition = state.definitions.get(query.get("metaTemplateId", ""))
            if definition is None:
                return self._error(404, "ResourceNotFoundException", "template not found")
            return self._reply(200, {"template": json.dumps(definition)})
        return self._error(404, "ResourceNotFoundException", f"no route {url.path}")

    def do_POST(self):  # noqa: N802
        arrived = time.time()
        url = urlparse(self.path)
        raw = self._body()
        if url.path == "/_fake/reset":
            self.server.reset()
            return self._reply(200, {"reset": True})
        if url.path == "/_fake/media":
            if not raw or len(raw) > MAX_MEDIA_BYTES:
                return self._error(400, "ValidationException", f"the file must hold 1 to {MAX_MEDIA_BYTES} bytes")
            mime_type = (self.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
            return self._reply(200, {"mediaId": self.server.add_media(raw, mime_type)})
        target = self.headers.get("X-Amz-Target", "")
        if target:
            return self._sms(target, raw, arrived)
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "ValidationException", "body is not JSON")
        if url.path == "/v1/whatsapp/send":
            return self._send(params, arrived)
        if url.path == "/v1/whatsapp/media":
            return self._media(params, arrived)
        if url.path == "/v1/whatsapp/media/get":
            return self._get_media(params, arrived)
        return self._error(404, "ResourceNotFoundException", f"no route {url.path}")

    def _sleep_until(self, arrived: float) -> None:
        delay = self.server.state.latency - (time.time() - arrived)
        if delay > 0:
            time.sleep(delay)

    def _send(self, params: dict, arrived: float):
        missing = [p for p in ("originationPhoneNumberId", "message", "metaApiVersion") if not params.get(p)]
        if missing:
            return self._error(400, "ValidationException", f"missing {', '.join(missing)}")
        try:
            message = json.loads(base64.b64decode(params["message"]))
        except ValueError:
            return self._error(400, "ValidationException", "message is not base64 JSON")
        self._sleep_until(arrived)
        if failure := self._injected_failure("SendWhatsAppMessage"):
            return self._error(failure[1], failure[0], "injected failure")
        self._record("SendWhatsAppMessage", {**params, "message": None}, message)
        return self._reply(200, {"messageId": str(uuid.uuid4())})

    def _media(self, params: dict, arrived: float):
        source = params.get("sourceS3File") or {}
        if not params.get("originationPhoneNumberId") or not (source or params.get("sourceS3PresignedUrl")):
            return self._error(400, "InvalidParametersException", "originationPhoneNumberId and a source are required")
        self._sleep_until(arrived)
        if failure := self._injected_failure("PostWhatsAppMessageMedia"):
            return self._error(failure[1], failure[0], "injected failure")
        self._record("PostWhatsAppMessageMedia", params)
        return self._reply(200, {"mediaId": str(uuid.uuid4().int)[:16]})

    def _get_media(self, params: dict, arrived: float):
        media_id, destination = params.get("mediaId"), params.get("destinationS3File") or {}
        if not media_id or not params.get("originationPhoneNumberId"):
            return self._error(400, "ValidationException", "mediaId and originationPhoneNumberId are required")
        if destination and params.get("destinationS3PresignedUrl"):
            return self._error(400, "InvalidParametersException", "give one destination, not both")
        self._sleep_until(arrived)
        if failure := self._injected_failure("GetWhatsAppMessageMedia"):
            return self._error(failure[1], failure[0], "injected failure")
        with self.server.state.lock:
            found = self.server.state.media.get(media_id)
        if found is None:
            return self._error(404, "ResourceNotFoundException", f"no media {media_id}")
        data, mime_type = found
        self._record("GetWhatsAppMessageMedia", params)
        if not params.get("metadataOnly"):
            if not destination.get("bucketName") or not self.server.state.s3_endpoint:
                return self._error(400, "InvalidParametersException", "destinationS3File is required here")
            # The real service appends the media id and an extension to the key prefix (aws-apis.md §1.4).
            key = f"{destination.get('key', '')}{media_id}.{mime_type.split('/')[-1]}"
            self.server.s3().put_object(Bucket=destination["bucketName"], Key=key, Body=data, ContentType=mime_type)
        return self._reply(200, {"mimeType": mime_type, "fileSize": len(data)})

    def _sms(self, target: str, raw: bytes, arrived: float):
        operation = target.rsplit(".", 1)[-1]
        if not target.startswith("PinpointSMSVoiceV2.") or operation not in SMS_VOICE_REQUIRED:
            return self._error(400, "UnknownOperationException", f"unsupported {target}", json10=True)
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "SerializationException", "body is not JSON", json10=True)
        missing = [name for name in SMS_VOICE_REQUIRED[operation] if not _dig(params, name)]
        if missing:
            return self._error(400, "ValidationException", f"{', '.join(missing)} is required", json10=True)
        self._sleep_until(arrived)
        if failure := self._injected_failure(operation):
            return self._error(failure[1], failure[0], "injected failure", json10=True)
        message_id = str(uuid.uuid4())
        self._record(operation, params, message_id=message_id)
        return self._reply(200, {"MessageId": message_id}, content_type="application/x-amz-json-1.0")


# What each sms-voice-v2 operation needs (dotted: a member inside a structure), as the service checks.
SMS_VOICE_REQUIRED = {
    "SendTextMessage": ("DestinationPhoneNumber",),
    "SendVoiceMessage": ("DestinationPhoneNumber", "OriginationIdentity", "MessageBody"),
    "SendRcsMessage": ("DestinationPhoneNumber", "OriginationIdentity", "RcsMessageContent.Content"),
}


def _dig(params: dict, dotted: str):
    value = params
    for name in dotted.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def sms_voice_events(call: Call, *, outcome: str = "", duration: int = 12) -> list[dict]:
    """The events EUM SMS publishes to a configuration set's destination for a voice or RCS send, in
    order, in the service's event format. Voice: INITIATED, RINGING, then ANSWERED and COMPLETED (or
    ``outcome`` BUSY, NO_ANSWER, FAILED); RCS: DELIVERED, then READ (or ``outcome`` FAILED)."""
    if call.operation == "SendVoiceMessage":
        steps = ["INITIATED", "RINGING", *([outcome] if outcome else ["ANSWERED", "COMPLETED"])]
        prefix = "VOICE"
    elif call.operation == "SendRcsMessage":
        steps, prefix = ([outcome] if outcome else ["DELIVERED", "READ"]), "RCS"
    else:
        raise ValueError(f"{call.operation} publishes no voice or RCS events")
    requested = int(call.at * 1000)
    events = []
    for n, step in enumerate(steps, start=1):
        final = n == len(steps)
        event = {
            "eventType": f"{prefix}_{step}",
            "eventVersion": "1.0",
            "eventTimestamp": requested + 1000 * n,
            "isFinal": final,
            "originationPhoneNumber": call.params.get("OriginationIdentity", ""),
            "destinationPhoneNumber": call.params["DestinationPhoneNumber"],
            "isoCountryCode": "IN",
            "messageId": call.message_id,
            "messageRequestTimestamp": requested,
            "messageStatus": step,
            "messageStatusDescription": step.replace("_", " ").capitalize(),
        }
        if prefix == "VOICE" and final:
            event["totalDurationRounded"] = duration if step == "COMPLETED" else 0
        if prefix == "RCS":
            event["rcsBusinessId"] = call.params.get("OriginationIdentity", "")
            event["agentIsoCountryCode"] = "US"
        events.append(event)
    return events


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address, state: FakeState):
        super().__init__(address, _Handler)
        self.state = state
        self._s3 = None

    def s3(self):
        if self._s3 is None:
            import boto3  # only the media download needs it

            self._s3 = boto3.client("s3", endpoint_url=self.state.s3_endpoint, region_name="us-east-1")
        return self._s3

    def add_media(self, data: bytes, mime_type: str) -> str:
        media_id = str(uuid.uuid4().int)[:15]
        with self.state.lock:
            self.state.media[media_id] = (data, mime_type)
        return media_id

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.failures.clear()

    def stats(self) -> dict:
        with self.state.lock:
            calls = list(self.state.calls)
        by_operation: dict[str, int] = {}
        for call in calls:
            by_operation[call.operation] = by_operation.get(call.operation, 0) + 1
        sends = sorted(c.at for c in calls if c.operation == "SendWhatsAppMessage")
        return {
            "calls": by_operation,
            "sends": len(sends),
            "first": sends[0] if sends else None,
            "last": sends[-1] if sends else None,
            "busiestSecond": busiest_second(sends),
        }


def busiest_second(times: list[float]) -> int:
    """Most calls that arrived within any one-second window."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


class FakeSocialMessaging:
    """The fake, served from a background thread on 127.0.0.1."""

    def __init__(self, *, latency: float = 0.05, port: int = 0, s3_endpoint: str = ""):
        if s3_endpoint and not is_local_url(s3_endpoint):
            raise ValueError(f"the S3 endpoint must be on this machine (http://127.0.0.1:PORT), not {s3_endpoint!r}")
        self.state = FakeState(latency=latency, s3_endpoint=s3_endpoint)
        self.server = _Server(("127.0.0.1", port), self.state)
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-socialmessaging", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeSocialMessaging:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSocialMessaging:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what happened, and what should happen next ---

    def calls(self, operation: str | None = None) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if operation in (None, c.operation)]

    @property
    def sends(self) -> list[Call]:
        return self.calls("SendWhatsAppMessage")

    def fail_next(self, code: str, status: int, *, count: int = 1, operation: str | None = None) -> None:
        with self.state.lock:
            for _ in range(count):
                self.state.failures.append((operation, code, status))

    def add_media(self, data: bytes, mime_type: str) -> str:
        """A file held "by Meta" (what a customer sent); GetWhatsAppMessageMedia serves it by the id returned."""
        return self.server.add_media(data, mime_type)

    def add_template(self, waba_id: str, definition: dict, *, status: str = "APPROVED") -> None:
        """Serve a template (Meta JSON: name, language, category, components) for a linked WABA."""
        meta_id = str(definition.setdefault("id", str(uuid.uuid4().int)[:15]))
        if not any(a["id"] == waba_id for a in self.state.linked_accounts):
            self.state.linked_accounts.append(
                {
                    "arn": f"arn:aws:social-messaging:us-east-1:000000000000:waba/{waba_id.removeprefix('waba-')}",
                    "id": waba_id,
                    "wabaId": str(uuid.uuid4().int)[:15],
                    "registrationStatus": "COMPLETE",
                    "linkDate": datetime.now(UTC).timestamp(),
                    "wabaName": "fake",
                    "eventDestinations": [],
                }
            )
        self.state.templates.setdefault(waba_id, []).append(
            {
                "templateName": definition["name"],
                "metaTemplateId": meta_id,
                "templateStatus": status,
                "templateLanguage": definition.get("language", "en_US"),
                "templateCategory": definition.get("category", "UTILITY"),
            }
        )
        self.state.definitions[meta_id] = definition


def is_local_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1")


SAMPLE_WABA_ID = "waba-10ca1000000000000000000000000001"

# Approved sample templates of the local WABA: positional, named, utility and marketing.
SAMPLE_TEMPLATES: list[dict] = [
    {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hello {{1}}, your order {{2}} is on its way.",
                "example": {"body_text": [["Asha", "A-1042"]]},
            }
        ],
    },
    {
        "name": "appointment_reminder",
        "language": "en_US",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{customer_name}}, this is a reminder of your appointment on {{date}}.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "customer_name", "example": "Asha"},
                        {"param_name": "date", "example": "12 March"},
                    ]
                },
            }
        ],
    },
    {
        "name": "welcome_message",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Thank you for contacting WECARE.DIGITAL. How can we help?"}],
    },
    {
        "name": "seasonal_offer",
        "language": "en_US",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "BODY", "text": "{{1}}, our winter offer is here: 20% off until {{2}}."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
    },
]


def add_samples(fake: FakeSocialMessaging) -> None:
    """The local WABA of `make run`: linked, with the approved sample templates."""
    for number, definition in enumerate(SAMPLE_TEMPLATES, start=1):
        fake.add_template(SAMPLE_WABA_ID, {**definition, "id": f"10ca1{number:010d}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call (default 0.05)")
    parser.add_argument("--samples", action="store_true", help="serve a linked WABA with approved sample templates")
    parser.add_argument("--s3-endpoint", default="", help="local S3 (moto) where GetWhatsAppMessageMedia writes")
    args = parser.parse_args()
    try:
        fake = FakeSocialMessaging(latency=args.latency, port=args.port, s3_endpoint=args.s3_endpoint)
    except ValueError as exc:
        parser.error(str(exc))
    if args.samples:
        add_samples(fake)
    fake.start()
    print(f"fake End User Messaging Social on {fake.url} (latency {args.latency * 1000:.0f} ms); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
