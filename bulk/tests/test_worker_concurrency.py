"""Bulk workers run with 2 to 5 processes: the setting is validated, and a worker outside the range refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

PRINT_SETTING = "import django; django.setup(); from django.conf import settings as s; print(s.BULK_WORKER_CONCURRENCY)"


def _settings_with(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTING],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "wecare.settings", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("value", ["1", "6", "two"])
def test_a_bulk_worker_concurrency_outside_2_to_5_is_refused_at_start_up(value):
    result = _settings_with(BULK_WORKER_CONCURRENCY=value)

    assert result.returncode != 0
    assert "BULK_WORKER_CONCURRENCY" in result.stderr


def test_a_bulk_worker_concurrency_within_2_to_5_is_accepted():
    result = _settings_with(BULK_WORKER_CONCURRENCY="5")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("5")


@pytest.mark.worker
def test_a_worker_consuming_bulk_queue_with_one_process_refuses_to_start(settings, celery_worker_factory):
    with pytest.raises(RuntimeError) as refused:
        celery_worker_factory(queues=[settings.QUEUE_BULK], concurrency=1)

    assert "needs a concurrency between 2 and 5 (got 1)" in str(refused.value)


@pytest.mark.worker
def test_a_worker_of_other_queues_may_run_one_process(settings, celery_worker_factory):
    worker = celery_worker_factory(queues=[settings.QUEUE_DEFAULT], concurrency=1)

    assert worker.process.poll() is None
