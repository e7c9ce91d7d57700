"""System checks (automation.E001…) of the Bedrock settings: ids that parse but cannot work.

Run by `manage.py check`, runserver, migrate and (through wecare.checks) the Celery worker and beat.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, register

KNOWLEDGE_BASE_ID = re.compile(r"^[0-9a-zA-Z]{10}$")
AGENT_ID = re.compile(r"^[0-9a-zA-Z]{1,10}$")  # InvokeAgent's agentId and agentAliasId
GUARDRAIL_ID = re.compile(r"^(([a-z0-9]+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+))$")


@register("automation")
def check_bedrock_ids(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    if not KNOWLEDGE_BASE_ID.match(settings.BEDROCK_KNOWLEDGE_BASE_ID):
        errors.append(Error(
            f"BEDROCK_KNOWLEDGE_BASE_ID {settings.BEDROCK_KNOWLEDGE_BASE_ID!r} is not a knowledge base id.",
            hint="Ten letters or digits, as FZBPKGTOYE.", id="automation.E001",
        ))  # fmt: skip
    if not AGENT_ID.match(settings.BEDROCK_AGENT_ID):
        errors.append(Error(
            f"BEDROCK_AGENT_ID {settings.BEDROCK_AGENT_ID!r} is not an agent id.",
            hint="Up to ten letters or digits, as HQNT0JXN8G.", id="automation.E002",
        ))  # fmt: skip
    alias = settings.BEDROCK_AGENT_ALIAS_ID
    if alias and not AGENT_ID.match(alias):
        errors.append(Error(
            f"BEDROCK_AGENT_ALIAS_ID {alias!r} is not an agent alias id.",
            hint="Up to ten letters or digits (TSTALIASID is the draft test alias); unset it to use the local "
                 "knowledge base.", id="automation.E003",
        ))  # fmt: skip
    guardrail = settings.BEDROCK_GUARDRAIL_ID
    if guardrail and not GUARDRAIL_ID.match(guardrail):
        errors.append(Error(
            f"BEDROCK_GUARDRAIL_ID {guardrail!r} is not a guardrail id or ARN.",
            hint="Lower-case letters and digits, or arn:aws:bedrock:<region>:<account>:guardrail/<id>.",
            id="automation.E004",
        ))  # fmt: skip
    return errors
