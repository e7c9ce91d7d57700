"""Deployment mistakes an attacker would love, refused at start; and the production settings pass
Django's own deployment check."""

from __future__ import annotations

import pytest
from django.test import Client

from wecare import aws
from wecare.tests.test_startup import CHECK, _refused, django_key_secret, production, start  # noqa: F401

DEPLOY_CHECK = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]


def test_production_refuses_to_start_without_cognito(start, production):
    result = start(CHECK, **{**production, "OIDC_CLIENT_ID": None})

    _refused(result, "OIDC_CLIENT_ID is required in production: staff sign in with Cognito")


def test_a_test_environment_answering_a_public_host_name_refuses_the_public_test_key(start):
    result = start(CHECK, ENVIRONMENT="test", ALLOWED_HOSTS="platform.wecare.digital")

    _refused(result, "needs DJANGO_SECRET_KEY: the built-in test key is public and serves only localhost")


def test_the_deploy_check_refuses_the_public_test_key(start):
    result = start(DEPLOY_CHECK, ENVIRONMENT="test")

    _refused(result, "(wecare.E131) SECRET_KEY is the built-in test key")


def test_production_settings_pass_djangos_deployment_check(start, production):
    result = start(DEPLOY_CHECK, **production)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_live_sends_need_the_configured_aws_account(start, production):
    result = start(CHECK, **{**production, "AWS_ACCOUNT_ID": "111111111111"}, SEND_MODE="LIVE")

    _refused(result, "(wecare.E130) SEND_MODE=LIVE is refused: the credentials belong to AWS account 809904170947")


def test_live_sends_name_a_missing_aws_account(start, production):
    result = start(CHECK, **{**production, "AWS_ACCOUNT_ID": None}, SEND_MODE="LIVE")

    _refused(result, "AWS_ACCOUNT_ID is required with SEND_MODE=LIVE")


def test_the_web_process_checks_the_account_when_it_starts(start, production):
    result = start(["-c", "import wecare.wsgi"], **{**production, "AWS_ACCOUNT_ID": "111111111111"}, SEND_MODE="LIVE")

    _refused(result, "WrongAWSAccount: SEND_MODE=LIVE is refused")


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
