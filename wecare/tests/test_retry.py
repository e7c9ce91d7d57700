"""The one backoff rule every task uses (wecare.retry)."""

from __future__ import annotations

from wecare.retry import backoff_seconds


def test_backoff_doubles_per_attempt_between_half_and_all_of_its_ceiling():
    for attempt, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0)):
        samples = [backoff_seconds(attempt, base=2.0, cap=100.0) for _ in range(300)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4  # spread out, not one instant for every worker


def test_backoff_never_exceeds_its_cap():
    assert all(backoff_seconds(30, base=5.0, cap=900.0) <= 900.0 for _ in range(100))
    assert all(backoff_seconds(30, base=5.0, cap=900.0) >= 450.0 for _ in range(100))


def test_a_zero_base_retries_at_once():
    assert backoff_seconds(4, base=0.0, cap=900.0) == 0.0
