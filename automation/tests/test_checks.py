from __future__ import annotations

import pytest
from django.core.checks import run_checks

from automation.checks import check_bedrock_ids


def test_the_defaults_pass():
    assert [m for m in run_checks() if m.id and m.id.startswith("automation.")] == []


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("BEDROCK_KNOWLEDGE_BASE_ID", "kb-123", "automation.E001"),
        ("BEDROCK_AGENT_ID", "HQNT0JXN8G-extra", "automation.E002"),
        ("BEDROCK_AGENT_ALIAS_ID", "alias with spaces", "automation.E003"),
        ("BEDROCK_GUARDRAIL_ID", "Guardrail One", "automation.E004"),
    ],
)
def test_a_bedrock_id_that_cannot_work_is_an_error(settings, setting, value, error):
    setattr(settings, setting, value)

    assert [e.id for e in check_bedrock_ids()] == [error]


def test_a_real_alias_and_guardrail_pass(settings):
    settings.BEDROCK_AGENT_ALIAS_ID = "TSTALIASID"
    settings.BEDROCK_GUARDRAIL_ID = "arn:aws:bedrock:us-east-1:809904170947:guardrail/abc123xyz"

    assert check_bedrock_ids() == []
