"""Shared test fixtures. Tests run against real parts: PostgreSQL, moto_server over HTTP,
and a real Celery worker on the SQS emulator where behaviour depends on one.

Run them through `make test` (or `scripts/with-services.sh pytest ...`), which starts the services.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from wecare import aws

ROOT = Path(__file__).resolve().parent

# Users per role and the Playwright browser fixtures of the operator pages' tests.
pytest_plugins = ["wecare.tests.pages_fixtures"]


def _require_emulator() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint.startswith("http://127.0.0.1"):
        pytest.exit("AWS_ENDPOINT_URL must point at a local moto_server: run tests with `make test`.", 2)
    return endpoint


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    return _require_emulator()


@pytest.fixture(scope="session", autouse=True)
def aws_resources(aws_endpoint, django_db_blocker):
    """The queues, buckets, tables and secrets exist on the emulator for the whole session."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("bootstrap_aws", stdout=io.StringIO())
    yield


@pytest.fixture(autouse=True)
def fresh_rate_limit_tokens():
    """Tokens a test's process took in a batch are not spent by the next test."""
    from messaging.ratelimit import held_tokens_forget

    held_tokens_forget()
    yield
    held_tokens_forget()


class DynamoCalls:
    """The DynamoDB requests pynamodb made in this process while counting (operation names)."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    @property
    def count(self) -> int:
        return len(self.operations)


@pytest.fixture
def dynamodb_calls(monkeypatch):
    """``dynamodb_calls.count``: DynamoDB requests made since the fixture started (rate limits, tier)."""
    from pynamodb.connection.base import Connection

    calls = DynamoCalls()
    dispatch = Connection.dispatch

    def counted(self, operation_name, operation_kwargs):
        calls.operations.append(operation_name)
        return dispatch(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "dispatch", counted)
    return calls


@pytest.fixture
def reset_aws(aws_endpoint):
    """Empty every emulated service, then recreate the platform's resources."""
    from django.core.management import call_command

    requests.post(f"{aws_endpoint}/moto-api/reset", timeout=10)
    aws.reset_clients()
    call_command("bootstrap_aws", stdout=io.StringIO())
    yield


@pytest.fixture
def alert_inbox(aws_endpoint):
    """An SQS queue subscribed to the platform's SNS alert topic: ``alert_inbox()`` returns (and removes)
    the notifications published to Admins since the last call."""
    import json
    import uuid

    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=f"alerts-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=settings.SNS_TOPIC_ARN.rsplit(":", 1)[-1])["TopicArn"]  # exists: idempotent
    subscription = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"}
    )["SubscriptionArn"]

    def received() -> list[dict]:
        out = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return out

    yield received
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class CeleryWorker:
    """A real `celery worker` subprocess on the emulated SQS broker, using the test database."""

    def __init__(self, queues: list[str], concurrency: int = 2, extra_env: dict | None = None, beat: bool = False):
        self.log_path = ROOT / ".run" / f"worker-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_TASK_ALWAYS_EAGER": "false"}
        env.update(extra_env or {})
        self._log = open(self.log_path, "w")  # noqa: SIM115 - open for the worker's lifetime
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "wecare", "worker",
                "-Q", ",".join(queues), "-c", str(concurrency), "--loglevel=INFO",
                "--without-heartbeat", "--without-mingle", "--without-gossip", *(["--beat"] if beat else []),
            ],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if "ready." in self.log():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int) -> None:
        """Send a signal to the worker's main process."""
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def celery_worker_factory(transactional_db):
    """Start real workers: ``celery_worker_factory(queues=[...])``. Stopped after the test."""
    workers: list[CeleryWorker] = []

    def start(queues: list[str] | None = None, concurrency: int = 2, extra_env: dict | None = None, beat: bool = False):
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
        names = queues or [settings.QUEUE_DEFAULT, settings.QUEUE_OUTBOUND, settings.QUEUE_INBOUND, settings.QUEUE_BULK]
        worker = CeleryWorker(
            [prefix + q if not q.startswith(prefix) else q for q in names], concurrency, extra_env, beat
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")
