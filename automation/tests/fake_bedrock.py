"""A local fake of Bedrock Agent Runtime (InvokeAgent and Retrieve) that speaks the real protocol.

It answers ``POST /knowledgebases/{id}/retrieve`` with queued JSON, and
``POST /agents/{agentId}/agentAliases/{aliasId}/sessions/{sessionId}/text`` with an
``application/vnd.amazon.eventstream`` body built frame by frame in the AWS event-stream binary
format (prelude: total and headers length + CRC32; typed headers; payload; message CRC32), so
botocore's own parser decodes it exactly as it decodes AWS's answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_STRING = 7  # the event-stream header value type "string"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", _STRING, len(raw_value)) + raw_value


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message, CRCs included."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, body: dict) -> bytes:
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return frame(headers, json.dumps(body).encode())


def chunk(text: str, citations: list | None = None) -> bytes:
    body: dict = {"bytes": base64.b64encode(text.encode()).decode()}
    if citations:
        body["attribution"] = {"citations": citations}
    return event("chunk", body)


def trace(inner: dict) -> bytes:
    return event("trace", {"agentId": "HQNT0JXN8G", "agentAliasId": "ALIAS12345", "sessionId": "s", "trace": inner})


def exception(exception_type: str, message: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    return frame(headers, json.dumps({"message": message}).encode())


class FakeBedrockAgent:
    """Serves queued answers (lists of frames, or an HTTP error) in order; records each request."""

    def __init__(self):
        self.answers: list[tuple[int, bytes]] = []
        self.retrievals: list[tuple[int, bytes]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": self.path, "body": body})
                retrieve = self.path.endswith("/retrieve")
                queue = fake.retrievals if retrieve else fake.answers
                status, payload = queue.pop(0) if queue else (500, b'{"message":"no answer queued"}')
                self.send_response(status)
                if status == 200 and retrieve:
                    self.send_header("Content-Type", "application/json")
                elif status == 200:
                    session = self.path.split("/sessions/")[1].split("/")[0]
                    self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                    self.send_header("x-amzn-bedrock-agent-content-type", "application/json")
                    self.send_header("x-amz-bedrock-agent-session-id", session)
                else:
                    self.send_header("Content-Type", "application/json")
                    self.send_header(
                        "x-amzn-ErrorType", "ThrottlingException" if status == 429 else "ValidationException"
                    )
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def stream(self, *frames: bytes) -> None:
        self.answers.append((200, b"".join(frames)))

    def retrieved(self, *results: dict) -> None:
        self.retrievals.append((200, json.dumps({"retrievalResults": list(results)}).encode()))

    def error(self, status: int, message: str = "slow down", *, retrieve: bool = False) -> None:
        queue = self.retrievals if retrieve else self.answers
        queue.append((status, json.dumps({"message": message}).encode()))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
