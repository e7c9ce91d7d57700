from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from wecare import aws


class FakeAWS:
    """A local HTTP endpoint that answers every request with ``status`` after ``delay`` seconds."""

    def __init__(self, status: int = 500, delay: float = 0.0):
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                fake.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                body = b'{"__type": "InternalFailure", "message": "the fake is failing on purpose"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fresh_clients():
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.fixture
def fake_aws():
    fakes: list[FakeAWS] = []

    def make(**kwargs) -> FakeAWS:
        fakes.append(FakeAWS(**kwargs))
        return fakes[-1]

    yield make
    for fake in fakes:
        fake.close()


def test_clients_use_the_emulator_from_aws_endpoint_url(fresh_clients, settings):
    sqs = aws.client("sqs")

    assert sqs.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]
    assert sqs.meta.region_name == settings.AWS_REGION
    assert sqs.get_queue_url(QueueName=settings.QUEUE_DEFAULT)["QueueUrl"].endswith("/" + settings.QUEUE_DEFAULT)


def test_a_per_service_endpoint_overrides_the_global_one_for_that_service_only(fresh_clients, fake_aws, monkeypatch):
    fake = fake_aws()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", fake.url)
    aws.reset_clients()

    assert aws.client("socialmessaging").meta.endpoint_url == fake.url
    assert aws.client("s3").meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]


def test_clients_are_cached_per_service_until_reset(fresh_clients):
    sqs = aws.client("sqs")

    assert aws.client("sqs") is sqs
    assert aws.client("s3") is not sqs
    aws.reset_clients()
    assert aws.client("sqs") is not sqs


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_failing_call_is_tried_aws_max_attempts_times(fresh_clients, fake_aws, monkeypatch, settings, attempts):
    fake = fake_aws(status=500)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", fake.url)
    settings.AWS_MAX_ATTEMPTS = attempts

    with pytest.raises(ClientError) as raised:
        aws.client("sqs").list_queues()

    assert fake.requests == attempts
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == attempts - 1


def test_a_call_gives_up_after_aws_read_timeout(fresh_clients, fake_aws, monkeypatch, settings):
    fake = fake_aws(status=200, delay=2)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", fake.url)
    settings.AWS_READ_TIMEOUT = 0.3
    settings.AWS_MAX_ATTEMPTS = 1
    started = time.monotonic()

    with pytest.raises(ReadTimeoutError):
        aws.client("sqs").list_queues()

    assert time.monotonic() - started < 1.5
    assert fake.requests == 1


@pytest.fixture
def secret(fresh_clients):
    name = f"wecare/test-secret-{uuid.uuid4().hex}"
    aws.client("secretsmanager").create_secret(Name=name, SecretString="first-" + uuid.uuid4().hex)
    return name


def _value(name: str) -> str:
    return aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(aws, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.mark.parametrize("region", [None, "us-east-1"], ids=["factory", "before-settings"])
def test_get_secret_reads_secrets_manager_and_caches_the_value(secret, clock, settings, region):
    settings.SECRETS_CACHE_SECONDS = 60
    ttl = 60 if region is None else 300
    first = _value(secret)

    assert aws.get_secret(secret, region=region) == first

    aws.client("secretsmanager").put_secret_value(SecretId=secret, SecretString="second")
    clock[0] += ttl - 1
    assert aws.get_secret(secret, region=region) == first  # cached
    clock[0] += 2
    assert aws.get_secret(secret, region=region) == "second"  # expired, read again


def test_reset_clients_forgets_cached_secrets(secret):
    first = aws.get_secret(secret)
    aws.client("secretsmanager").put_secret_value(SecretId=secret, SecretString="second")

    aws.reset_clients()

    assert first != "second"
    assert aws.get_secret(secret) == "second"


def test_a_missing_secret_raises_and_caches_nothing(fresh_clients):
    name = f"wecare/missing-{uuid.uuid4().hex}"

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        aws.get_secret(name)
    aws.client("secretsmanager").create_secret(Name=name, SecretString="now-there")
    assert aws.get_secret(name) == "now-there"


def test_get_secret_never_logs_the_value_even_at_debug_level(secret, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    value = _value(secret)
    aws.reset_clients()

    aws.get_secret(secret)
    aws.get_secret(secret, region="us-east-1")
    logging.getLogger("wecare.aws").debug("probe")

    assert "probe" in caplog.text  # DEBUG records are captured: their absence below means something
    assert value not in caplog.text
    assert not [r for r in caplog.records if value in r.getMessage()]
    assert value not in capfd.readouterr().err
    # LOG_LEVEL=DEBUG must not open botocore's wire log, which prints response bodies (secrets).
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING
