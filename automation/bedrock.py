"""Bedrock Agent Runtime: Retrieve on the knowledge base, InvokeAgent for the draft.

Each call has the client's timeouts and at most AI_CALL_RETRIES retries of a transient error
(throttling, a 5xx, a timeout — before or in the middle of InvokeAgent's event stream). Anything
else fails at once with BedrockError. The stream is read to its end inside the call.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from django.conf import settings

from wecare import aws

logger = logging.getLogger(__name__)

SERVICE = "bedrock-agent-runtime"
TRANSIENT_CODES = {
    "ThrottlingException",
    "throttlingException",
    "InternalServerException",
    "internalServerException",
    "BadGatewayException",
    "badGatewayException",
    "DependencyFailedException",
    "dependencyFailedException",
    "ModelNotReadyException",
    "modelNotReadyException",
    "ServiceUnavailableException",
}
RETRY_BASE_SECONDS = 0.5


class BedrockError(Exception):
    def __init__(self, message: str, *, code: str = "", transient: bool = False):
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass
class Passage:
    text: str
    source_id: str
    score: float | None

    def as_dict(self) -> dict:
        return {"text": self.text, "source_id": self.source_id, "score": self.score}


@dataclass
class AgentAnswer:
    text: str
    citations: list[dict] = field(default_factory=list)
    guardrail_traces: list[dict] = field(default_factory=list)
    tokens_used: int | None = None
    session_id: str = ""


def _client():
    # max_attempts=1: the retries are ours (below), so that an error in the middle of the event
    # stream is retried by the same rule as one before it.
    return aws.client(SERVICE, max_attempts=1, read_timeout=settings.AI_CALL_TIMEOUT_SECONDS)


def _error(exc: Exception) -> BedrockError:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        transient = code in TRANSIENT_CODES or status == 429 or status >= 500
        return BedrockError(f"{code or 'error'}: {message}", code=code, transient=transient)
    if isinstance(exc, ParamValidationError):
        return BedrockError(f"invalid request: {exc}", code="ParamValidationError", transient=False)
    # Timeouts, connection errors, a stream cut short: worth another try.
    return BedrockError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__, transient=True)


def _with_retries(operation: str, call):
    attempts = 1 + min(settings.AI_CALL_RETRIES, 2)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (ClientError, BotoCoreError, OSError) as exc:
            error = _error(exc)
            if not error.transient or attempt == attempts:
                logger.warning("bedrock %s failed after %d attempt(s): %s", operation, attempt, error.code)
                raise error from exc
            logger.info("bedrock %s attempt %d failed (%s): retrying", operation, attempt, error.code)
            time.sleep(RETRY_BASE_SECONDS * attempt)
    raise AssertionError("unreachable")


def _source_id(result: dict) -> str:
    location = result.get("location") or {}
    for key, inner in (
        ("s3Location", "uri"),
        ("webLocation", "url"),
        ("confluenceLocation", "url"),
        ("salesforceLocation", "url"),
        ("sharePointLocation", "url"),
        ("customDocumentLocation", "id"),
        ("kendraDocumentLocation", "uri"),
    ):
        if location.get(key, {}).get(inner):
            return str(location[key][inner])
    metadata = result.get("metadata") or {}
    return str(result.get("documentId") or metadata.get("x-amz-bedrock-kb-source-uri") or "")


def retrieve(query: str) -> list[Passage]:
    """Retrieve on the configured knowledge base: the passages with their source ids."""
    params: dict = {
        "knowledgeBaseId": settings.BEDROCK_KNOWLEDGE_BASE_ID,
        "retrievalQuery": {"text": query[:20000]},
        "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": settings.AI_RETRIEVE_RESULTS}},
    }
    if settings.BEDROCK_GUARDRAIL_ID:
        params["guardrailConfiguration"] = {
            "guardrailId": settings.BEDROCK_GUARDRAIL_ID,
            "guardrailVersion": settings.BEDROCK_GUARDRAIL_VERSION,
        }
    response = _with_retries("Retrieve", lambda: _client().retrieve(**params))
    passages = []
    for result in response.get("retrievalResults", []):
        text = (result.get("content") or {}).get("text") or ""
        if text:
            passages.append(Passage(text=text, source_id=_source_id(result), score=result.get("score")))
    return passages


def session_id_for(contact_id) -> str:
    """One agent session per contact, so the agent's memory follows the conversation."""
    return "contact-" + hashlib.sha256(str(contact_id).encode()).hexdigest()[:32]


def agent_input(*, message: str, conversation: list[str], passages: list[Passage]) -> str:
    """The text given to the agent: the knowledge passages as context, the conversation, the message."""
    parts = ["Knowledge passages (answer only from these; say so if they do not cover the question):"]
    for number, passage in enumerate(passages, start=1):
        parts.append(f"[{number}] (source: {passage.source_id or 'unknown'})\n{passage.text}")
    if not passages:
        parts.append("(none found)")
    if conversation:
        parts.append("Recent conversation, oldest first:\n" + "\n".join(conversation))
    parts.append("Draft a reply to the customer's latest message:\n" + message)
    return "\n\n".join(parts)


def _guardrail(trace_part: dict) -> dict | None:
    trace = trace_part.get("trace") or {}
    guardrail = trace.get("guardrailTrace")
    if guardrail and guardrail.get("action") == "INTERVENED":
        return guardrail
    return None


def _tokens(trace_part: dict) -> int:
    trace = trace_part.get("trace") or {}
    total = 0
    for step in ("preProcessingTrace", "orchestrationTrace", "postProcessingTrace", "routingClassifierTrace"):
        output = (trace.get(step) or {}).get("modelInvocationOutput") or {}
        usage = (output.get("metadata") or {}).get("usage") or {}
        total += int(usage.get("inputTokens") or 0) + int(usage.get("outputTokens") or 0)
    return total


def read_completion(completion) -> AgentAnswer:
    """Assemble InvokeAgent's event stream: the chunks' text in order, citations, guardrail
    interventions and token usage from the traces. An exception event raises EventStreamError."""
    answer = AgentAnswer(text="")
    parts: list[str] = []
    tokens = 0
    for event in completion:
        if "chunk" in event:
            chunk = event["chunk"]
            parts.append((chunk.get("bytes") or b"").decode("utf-8"))
            answer.citations += (chunk.get("attribution") or {}).get("citations", [])
        elif "trace" in event:
            guardrail = _guardrail(event["trace"])
            if guardrail is not None:
                answer.guardrail_traces.append(guardrail)
            tokens += _tokens(event["trace"])
        # returnControl / files: this agent has no action groups that return control.
    answer.text = "".join(parts).strip()
    answer.tokens_used = tokens or None
    return answer


def invoke_agent(*, contact_id, text: str) -> AgentAnswer:
    """InvokeAgent on the configured agent and alias, the contact's session; the whole answer."""
    session_id = session_id_for(contact_id)

    def call() -> AgentAnswer:
        response = _client().invoke_agent(
            agentId=settings.BEDROCK_AGENT_ID,
            agentAliasId=settings.BEDROCK_AGENT_ALIAS_ID,
            sessionId=session_id,
            inputText=text,
            enableTrace=True,
        )
        answer = read_completion(response["completion"])  # an exception event raises EventStreamError
        answer.session_id = response.get("sessionId", session_id)
        return answer

    return _with_retries("InvokeAgent", call)


def bedrock_configured() -> bool:
    return bool(settings.BEDROCK_AGENT_ALIAS_ID and settings.BEDROCK_AGENT_ID and settings.BEDROCK_KNOWLEDGE_BASE_ID)
