"""scripts/entrypoint.sh, the image's one entrypoint, run as the image runs it (no Docker here).

The start-up check is the real one (`manage.py bootstrap_aws --check` against the emulator); gunicorn and
celery are replaced on PATH by recorders that write what they were started with, so each role's command
line is seen without starting a server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"
PASSTHROUGH = ("HOME", "LANG", "LC_ALL", "TMPDIR", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")  # fmt: skip
CHECK_PASSED = "AWS resources of ENVIRONMENT=test are as needed."


@pytest.fixture
def run(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "started"
    for program in ("gunicorn", "celery"):
        recorder = bin_dir / program
        recorder.write_text(f'#!/bin/sh\necho "{program} $*" >> "{record}"\necho "started {program}"\n')
        recorder.chmod(0o755)

    def start(*args: str, **overrides: str) -> tuple[subprocess.CompletedProcess, str]:
        env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
        env.update(
            PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            PYTHON=sys.executable,
            DJANGO_SETTINGS_MODULE="wecare.settings",
            ENVIRONMENT="test",
            SEND_MODE="DRY_RUN",
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            CLOUDWATCH_LOGS_ENABLED="false",
            **overrides,
        )
        result = subprocess.run(
            ["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )
        return result, record.read_text() if record.exists() else ""

    return start


def test_web_starts_gunicorn_after_the_check_passes(run):
    result, started = run("web")

    assert result.returncode == 0, result.stderr
    assert result.stdout.index(CHECK_PASSED) < result.stdout.index("started gunicorn")
    assert started.startswith("gunicorn wecare.wsgi:application --bind 0.0.0.0:8000 --workers 3")


def test_the_worker_consumes_the_default_outbound_and_inbound_queues(run):
    result, started = run("worker")

    assert result.returncode == 0, result.stderr
    assert CHECK_PASSED in result.stdout
    assert started.startswith("celery -A wecare worker --queues default-queue,outbound-queue,inbound-queue,ai-queue ")


def test_the_bulk_worker_consumes_the_bulk_queue_with_its_concurrency(run):
    result, started = run("bulk-worker", BULK_WORKER_CONCURRENCY="3")

    assert result.returncode == 0, result.stderr
    assert "celery -A wecare worker --queues bulk-queue --concurrency 3 --hostname bulk@%h" in started


def test_beat_starts_the_celery_scheduler(run):
    result, started = run("beat")

    assert result.returncode == 0, result.stderr
    assert started.startswith("celery -A wecare beat")


def test_the_relay_runs_the_inbound_outbox_relay_after_the_check_passes(run):
    migrated, _ = run("migrate")
    assert migrated.returncode == 0, migrated.stderr

    result, started = run("relay", "--once")  # the loop itself runs until SIGTERM; --once is one round

    assert result.returncode == 0, result.stderr
    assert result.stdout.index(CHECK_PASSED) < result.stdout.index("0 event(s) relayed.")
    assert started == ""  # neither gunicorn nor celery


def test_the_relay_refuses_to_start_when_the_check_fails(run):
    result, _ = run("relay", "--once", CELERY_QUEUE_PREFIX="nowhere-")

    assert result.returncode == 78
    assert "entrypoint: refusing to start relay" in result.stderr
    assert "event(s) relayed" not in result.stdout


def test_migrate_checks_then_applies_the_migrations(run, tmp_path):
    result, _ = run("migrate")

    assert result.returncode == 0, result.stderr
    assert CHECK_PASSED in result.stdout
    tables = subprocess.run(
        ["sqlite3", str(tmp_path / "db.sqlite3"), ".tables"], capture_output=True, text=True, check=False
    )
    if tables.returncode == 0:  # the sqlite3 shell is optional; the migration output says it too
        assert "django_migrations" in tables.stdout
    assert "Applying" in result.stdout


def test_a_role_refuses_to_start_when_the_check_fails_and_lists_what_is_missing(run):
    result, started = run("web", CELERY_QUEUE_PREFIX="nowhere-")

    assert result.returncode == 78
    assert "queue nowhere-outbound-queue: missing" in result.stderr
    assert "queue nowhere-bulk-dlq: missing" in result.stderr
    assert "entrypoint: refusing to start web" in result.stderr
    assert started == ""


@pytest.mark.parametrize("role", ["", "shell", "web;id", "WEB"])
def test_an_unknown_role_is_refused_before_anything_runs(run, role):
    result, started = run(role)

    assert result.returncode == 64
    assert f"entrypoint: unknown role '{role}'" in result.stderr
    assert "usage: entrypoint.sh {web|worker|bulk-worker|beat|relay|migrate}" in result.stderr
    assert CHECK_PASSED not in result.stdout
    assert started == ""


def test_the_health_check_of_a_celery_role_fails_when_pid_1_is_not_celery(run):
    result, _ = run("health", "worker")  # here PID 1 is the machine's init, not Celery

    assert result.returncode != 0


def test_the_health_check_of_the_relay_fails_when_pid_1_is_not_the_relay(run):
    result, _ = run("health", "relay")

    assert result.returncode != 0


def test_the_health_check_refuses_an_unknown_role(run):
    result, _ = run("health", "database")

    assert result.returncode == 64


@pytest.fixture
def http_server(tmp_path):
    """A plain HTTP server on a free port serving tmp_path/www (stands in for gunicorn)."""
    www = tmp_path / "www"
    www.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(www)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield www, port
    server.terminate()
    server.wait(timeout=10)


def test_the_web_health_check_asks_healthz_on_the_web_port(run, http_server):
    www, port = http_server

    missing, _ = run("health", "web", PORT=str(port), ALLOWED_HOSTS="base.wecare.digital")
    (www / "healthz").write_text("ok")
    healthy, _ = run("health", "web", PORT=str(port), ALLOWED_HOSTS="base.wecare.digital")

    assert missing.returncode == 1
    assert "web unhealthy: HTTP Error 404" in missing.stderr
    assert healthy.returncode == 0, healthy.stderr
