"""RCS is sent from the RCS agent only: a pool or a phone number as RCS_AGENT_ID (with which AWS would
fall back to SMS) stops the process at start, as every malformed setting does."""

from __future__ import annotations

import pytest

from wecare.tests.test_startup import CHECK, _refused, start  # noqa: F401 - start is a fixture


@pytest.mark.parametrize(
    "agent",
    [
        "pool-6fbf5a5f390d4eeeaa7dbae39d78933e",
        "arn:aws:sms-voice:us-east-1:809904170947:pool/pool-6fbf5a5f390d4eeeaa7dbae39d78933e",
        "+12065550100",
        "phone-0123456789abcdef0123456789abcdef",
    ],
)
def test_a_pool_or_a_phone_number_as_the_rcs_agent_is_refused_at_start(start, agent):  # noqa: F811
    result = start(CHECK, RCS_AGENT_ID=agent)

    _refused(result, f"RCS_AGENT_ID={agent!r} is a pool or a phone number")


def test_an_rcs_agent_id_starts(start):  # noqa: F811
    result = start(CHECK, RCS_AGENT_ID="rcs-agent-0123456789abcdef0123456789abcdef")

    assert result.returncode == 0, result.stdout + result.stderr
