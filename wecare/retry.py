"""The one retry/backoff rule of the platform's tasks: exponential, capped, with "equal jitter".

``backoff_seconds(attempt, base=..., cap=...)`` for retry ``attempt`` (1-based) is between half and all
of ``min(cap, base × 2^(attempt-1))``: growing waits, spread out so that workers that failed together
do not all come back in the same second. Outbound deliveries, bulk chunks and inbound events use it.
"""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    ceiling = min(cap, base * 2 ** (max(1, attempt) - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
