from __future__ import annotations

import socket

import pytest

from wecare import aws

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_part_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "aws": "ok"}


def test_healthz_names_what_is_down(client, settings, reset_aws):
    settings.MEDIA_BUCKET = "bucket-that-does-not-exist"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "ok", "aws": "down"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_names_the_broker_when_sqs_is_unreachable(client, settings, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{_closed_port()}")
    settings.AWS_MAX_ATTEMPTS = 1
    aws.reset_clients()
    try:
        response = client.get("/healthz")
    finally:
        monkeypatch.undo()
        aws.reset_clients()

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down", "aws": "ok"}


def test_healthz_names_the_broker_when_the_task_queue_is_missing(client, settings):
    settings.QUEUE_DEFAULT = "queue-that-does-not-exist"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down", "aws": "ok"}
