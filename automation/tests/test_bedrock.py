"""Bedrock Agent Runtime: Retrieve (Stubber) and InvokeAgent's event stream (real encoded frames)."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStreamBuffer

from automation import bedrock
from automation.tests import fake_bedrock as fb

GUARDRAIL = {
    "guardrailTrace": {
        "action": "INTERVENED",
        "traceId": "trace-1",
        "outputAssessments": [
            {"contentPolicy": {"filters": [{"type": "INSULTS", "confidence": "HIGH", "action": "BLOCKED"}]}}
        ],
    }
}
USAGE = {
    "orchestrationTrace": {
        "modelInvocationOutput": {"traceId": "t", "metadata": {"usage": {"inputTokens": 812, "outputTokens": 64}}}
    }
}


def test_a_frame_built_here_is_decoded_by_botocore_with_its_headers_and_crcs():
    buffer = EventStreamBuffer()
    buffer.add_data(fb.chunk("Hello") + fb.exception("throttlingException", "slow down"))

    first, second = list(buffer)

    assert first.headers[":event-type"] == "chunk" and b'"bytes"' in first.payload
    assert second.headers == {
        ":message-type": "exception",
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
    }


def test_retrieve_asks_the_configured_knowledge_base_and_keeps_passages_with_their_sources(retrieve_stub, settings):
    settings.BEDROCK_GUARDRAIL_ID = "gr-123"
    retrieve_stub.add_response(
        "retrieve",
        {
            "retrievalResults": [
                {
                    "content": {"text": "Open Sundays 10-14."},
                    "location": {"type": "S3", "s3Location": {"uri": "s3://kb/hours.md"}},
                    "score": 0.82,
                },
                {
                    "content": {"text": "Refunds in 30 days."},
                    "location": {"type": "WEB", "webLocation": {"url": "https://wecare.digital/refunds"}},
                    "score": 0.41,
                },
            ]
        },
        {
            "knowledgeBaseId": "FZBPKGTOYE",
            "retrievalQuery": {"text": "When are you open on Sunday?"},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 5}},
            "guardrailConfiguration": {"guardrailId": "gr-123", "guardrailVersion": "DRAFT"},
        },
    )  # fmt: skip

    passages = bedrock.retrieve("When are you open on Sunday?")

    retrieve_stub.assert_no_pending_responses()
    assert [p.as_dict() for p in passages] == [
        {"text": "Open Sundays 10-14.", "source_id": "s3://kb/hours.md", "score": 0.82},
        {"text": "Refunds in 30 days.", "source_id": "https://wecare.digital/refunds", "score": 0.41},
    ]


def test_retrieve_retries_a_throttled_call_at_most_twice_then_fails(retrieve_stub):
    for _ in range(3):
        retrieve_stub.add_client_error("retrieve", service_error_code="ThrottlingException", http_status_code=429)

    with pytest.raises(bedrock.BedrockError) as failure:
        bedrock.retrieve("anything")

    retrieve_stub.assert_no_pending_responses()  # three attempts: the first and two retries
    assert failure.value.code == "ThrottlingException" and failure.value.transient


def test_retrieve_does_not_retry_an_error_that_will_not_go_away(retrieve_stub):
    retrieve_stub.add_client_error("retrieve", service_error_code="AccessDeniedException", http_status_code=403)
    retrieve_stub.add_response("retrieve", {"retrievalResults": []})

    with pytest.raises(bedrock.BedrockError) as failure:
        bedrock.retrieve("anything")

    assert failure.value.code == "AccessDeniedException" and not failure.value.transient
    assert len(retrieve_stub._queue) == 1  # the second answer was never asked for


def test_invoke_agent_assembles_a_chunked_answer_and_records_the_guardrail_and_tokens(fake_bedrock):
    fake_bedrock.stream(
        fb.trace(USAGE),
        fb.chunk("We are open on Sundays "),
        fb.chunk("from 10:00 to 14:00.", citations=[{"retrievedReferences": [{"content": {"text": "Open Sundays"}}]}]),
        fb.trace(GUARDRAIL),
    )

    answer = bedrock.invoke_agent(contact_id="c0ffee", text="When are you open?")

    assert answer.text == "We are open on Sundays from 10:00 to 14:00."
    assert answer.guardrail_traces == [GUARDRAIL["guardrailTrace"]]
    assert answer.tokens_used == 876
    assert len(answer.citations) == 1
    [request] = fake_bedrock.requests
    session = bedrock.session_id_for("c0ffee")
    assert request["path"] == f"/agents/HQNT0JXN8G/agentAliases/ALIAS12345/sessions/{session}/text"
    assert request["body"] == {"inputText": "When are you open?", "enableTrace": True}
    assert answer.session_id == session


def test_the_same_contact_always_gets_the_same_agent_session_and_others_another():
    assert bedrock.session_id_for("a") == bedrock.session_id_for("a") != bedrock.session_id_for("b")
    assert 2 <= len(bedrock.session_id_for("a")) <= 100


def test_an_error_event_in_the_middle_of_the_stream_is_retried_then_answered(fake_bedrock):
    fake_bedrock.stream(fb.chunk("Half an ans"), fb.exception("throttlingException", "Rate exceeded"))
    fake_bedrock.stream(fb.chunk("A whole answer."))

    answer = bedrock.invoke_agent(contact_id="c", text="q")

    assert answer.text == "A whole answer."
    assert len(fake_bedrock.requests) == 2


def test_a_lasting_error_event_fails_after_two_retries(fake_bedrock):
    for _ in range(3):
        fake_bedrock.stream(fb.exception("internalServerException", "boom"))

    with pytest.raises(bedrock.BedrockError) as failure:
        bedrock.invoke_agent(contact_id="c", text="q")

    assert failure.value.code == "internalServerException"
    assert len(fake_bedrock.requests) == 3


def test_a_validation_error_event_fails_at_once(fake_bedrock):
    fake_bedrock.stream(fb.exception("validationException", "bad input"))

    with pytest.raises(bedrock.BedrockError) as failure:
        bedrock.invoke_agent(contact_id="c", text="q")

    assert failure.value.code == "validationException" and not failure.value.transient
    assert len(fake_bedrock.requests) == 1


def test_the_agent_is_given_the_passages_as_context_with_the_conversation():
    text = bedrock.agent_input(
        message="Open Sunday?",
        conversation=["Customer: hi", "Us: hello"],
        passages=[bedrock.Passage(text="Open Sundays 10-14.", source_id="s3://kb/hours.md", score=0.8)],
    )

    assert "[1] (source: s3://kb/hours.md)\nOpen Sundays 10-14." in text
    assert "Customer: hi\nUs: hello" in text
    assert text.endswith("Open Sunday?")
