"""Production transport security (HTTPS redirect and HSTS behind the load balancer), and the
once-per-process AWS account check of LIVE. The start-up refusals are in test_startup.py."""

from __future__ import annotations

import pytest
from django.test import Client

from wecare import aws


def test_the_account_is_asked_once_per_process(settings, aws_endpoint):
    settings.SEND_MODE = "LIVE"
    settings.AWS_ACCOUNT_ID = aws.client("sts").get_caller_identity()["Account"]
    aws.live_account_reset()
    calls = []
    sts = aws.client("sts")
    original = sts.get_caller_identity

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    sts.get_caller_identity = counted
    try:
        assert aws.live_account_verify() == settings.AWS_ACCOUNT_ID
        assert aws.live_account_verify() == settings.AWS_ACCOUNT_ID
    finally:
        sts.get_caller_identity = original
        aws.live_account_reset()
    assert len(calls) == 1


@pytest.fixture
def production_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


@pytest.mark.django_db
def test_in_production_plain_http_is_redirected_to_https(production_https):
    response = Client().get("/accounts/login/")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


@pytest.mark.django_db
def test_behind_the_load_balancer_https_is_recognised_and_hsts_is_sent(production_https):
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.django_db
def test_the_load_balancer_health_check_over_http_is_not_redirected(production_https):
    assert Client().get("/healthz").status_code != 301
