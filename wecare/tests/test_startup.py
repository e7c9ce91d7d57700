"""Start-up validation, tested the way it happens: a fresh process with a controlled environment.

The web (manage.py), the Celery worker and beat read the same settings; a missing or malformed
setting stops each of them with a message that names the variable.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from wecare import aws

ROOT = Path(__file__).resolve().parents[2]
# Only what a process needs to run and to reach the emulator; every setting is given explicitly.
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")  # fmt: skip
CHECK = ["manage.py", "check"]
WORKER = ["-m", "celery", "-A", "wecare", "worker", "-Q", "startup-test", "--without-mingle", "--without-gossip",
          "--without-heartbeat", "--loglevel=INFO"]  # fmt: skip
BEAT = ["-m", "celery", "-A", "wecare", "beat", "--loglevel=INFO"]
SHOW_KEY_HASH = [
    "-c",
    "import hashlib, django; django.setup(); from django.core.management import call_command; "
    "call_command('check'); from django.conf import settings; "
    "print('key-sha256', hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest())",
]


@pytest.fixture
def start(tmp_path):
    def run(args: list[str], **overrides: str | None) -> subprocess.CompletedProcess:
        env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
        env.update(
            DJANGO_SETTINGS_MODULE="wecare.settings",
            ENVIRONMENT="test",
            SEND_MODE="DRY_RUN",
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            CLOUDWATCH_LOGS_ENABLED="false",
        )
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        # A process that does not refuse keeps running (a worker): the timeout then fails the test.
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
        )

    return run


def _refused(result: subprocess.CompletedProcess, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output


def _postgres_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def django_key_secret(aws_endpoint):
    name = f"wecare/startup-test-django-key-{uuid.uuid4().hex}"
    value = secrets.token_urlsafe(50)
    aws.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name, value


@pytest.fixture
def production(django_key_secret):
    name, _ = django_key_secret
    return {
        "ENVIRONMENT": "production",
        "SECRET_NAME_DJANGO_SECRET_KEY": name,
        "ALLOWED_HOSTS": "platform.wecare.digital",
        "DATABASE_URL": _postgres_url(),
        "OIDC_CLIENT_ID": "app-client",
        "AWS_ACCOUNT_ID": "809904170947",  # moto's account (scripts/with-services.sh)
    }


@pytest.mark.parametrize("environment", ["staging", "local"])
def test_live_send_mode_is_refused_outside_production(start, environment):
    result = start(CHECK, ENVIRONMENT=environment, SEND_MODE="LIVE", DJANGO_SECRET_KEY="k" * 50)

    _refused(result, f"SEND_MODE=LIVE is refused in ENVIRONMENT={environment}")


def test_the_worker_refuses_live_send_mode_outside_production(start):
    result = start(WORKER, ENVIRONMENT="staging", SEND_MODE="LIVE", DJANGO_SECRET_KEY="k" * 50)

    _refused(result, "SEND_MODE=LIVE is refused in ENVIRONMENT=staging")


def test_a_missing_environment_is_named(start):
    _refused(start(CHECK, ENVIRONMENT=None), "ENVIRONMENT is required: set it to one of production, staging")


def test_the_worker_names_a_missing_environment(start):
    _refused(start(WORKER, ENVIRONMENT=None), "ENVIRONMENT is required")


def test_an_unknown_environment_is_named(start):
    _refused(start(CHECK, ENVIRONMENT="prod"), "ENVIRONMENT='prod' is not valid")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AWS_MAX_ATTEMPTS", "abc", "AWS_MAX_ATTEMPTS='abc' is not a whole number."),
        ("AWS_MAX_ATTEMPTS", "0", "AWS_MAX_ATTEMPTS=0 is out of range"),
        ("AWS_READ_TIMEOUT", "soon", "AWS_READ_TIMEOUT='soon' is not a number."),
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
        ("SEND_MODE", "live", "SEND_MODE='live' is not valid"),
        ("DATABASE_URL", "nonsense://", "DATABASE_URL is malformed"),
        ("DATABASE_URL", "postgres//db.internal/wecare", "DATABASE_URL is malformed"),
    ],
)
def test_a_malformed_setting_is_named(start, name, value, message):
    _refused(start(CHECK, **{name: value}), message)


def test_a_malformed_database_url_does_not_show_its_password(start):
    result = start(CHECK, DATABASE_URL="nonsense://wecare:hunter2-secret@db.internal/wecare")

    _refused(result, "DATABASE_URL is malformed (scheme nonsense)")
    assert "hunter2-secret" not in result.stdout + result.stderr


def test_the_worker_and_beat_name_a_malformed_setting(start):
    _refused(start(WORKER, AWS_MAX_ATTEMPTS="abc"), "AWS_MAX_ATTEMPTS='abc' is not a whole number.")
    _refused(start(BEAT, AWS_MAX_ATTEMPTS="abc"), "AWS_MAX_ATTEMPTS='abc' is not a whole number.")


def test_staging_refuses_a_django_secret_key_from_the_environment(start):
    result = start(
        CHECK, ENVIRONMENT="staging", ALLOWED_HOSTS="staging.base.wecare.digital", DJANGO_SECRET_KEY="k" * 50
    )

    _refused(result, "DJANGO_SECRET_KEY must not be set in staging")


def test_staging_names_the_django_secret_it_cannot_read(start):
    result = start(CHECK, ENVIRONMENT="staging", ALLOWED_HOSTS="staging.base.wecare.digital")

    _refused(result, "(wecare.E009) SECRET_NAME_DJANGO_SECRET_KEY='base-wecare-digital/staging/django-secret-key'")


def test_production_refuses_a_django_secret_key_from_the_environment(start, production):
    result = start(CHECK, **production, DJANGO_SECRET_KEY="k" * 50)

    _refused(result, "DJANGO_SECRET_KEY must not be set in production")


def test_production_requires_allowed_hosts(start, production):
    _refused(start(CHECK, **{**production, "ALLOWED_HOSTS": None}), "ALLOWED_HOSTS is required")


def test_production_requires_database_url(start, production):
    _refused(start(CHECK, **{**production, "DATABASE_URL": None}), "DATABASE_URL is required in production")


def test_production_names_a_django_secret_it_cannot_read(start, production):
    result = start(CHECK, **{**production, "SECRET_NAME_DJANGO_SECRET_KEY": "wecare/no-such-secret"})

    _refused(result, "SECRET_NAME_DJANGO_SECRET_KEY='wecare/no-such-secret': the Django secret key could not be read")


def test_production_refuses_sqlite(start, production, tmp_path):
    result = start(CHECK, **{**production, "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}"})

    _refused(result, "wecare.E008")


def test_production_starts_with_the_django_secret_key_from_secrets_manager(start, production, django_key_secret):
    _, value = django_key_secret

    result = start(SHOW_KEY_HASH, **production, SEND_MODE="LIVE", CLOUDWATCH_LOGS_ENABLED="false")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"key-sha256 {hashlib.sha256(value.encode()).hexdigest()}" in result.stdout
    assert value not in result.stdout + result.stderr


def test_manage_check_reports_a_failing_system_check(start):
    result = start(CHECK, WHATSAPP_PHONE_NUMBER_IDS="phone-number-id-baa217c3f11b4ffd956f6f3afb44ce54,+919876543210")

    _refused(result, "(wecare.E001) WHATSAPP_PHONE_NUMBER_IDS has entries that are not phone-number ids: +919876543210")


def test_the_worker_refuses_to_start_when_a_system_check_fails(start):
    _refused(start(WORKER, SES_SENDER_EMAIL="one.wecare.digital"), "(wecare.E002) SES_SENDER_EMAIL")


def test_beat_refuses_to_start_when_a_system_check_fails(start):
    # Beat's DatabaseScheduler reads its tables before beat_init, so give it a migrated database.
    migrated = start(["manage.py", "migrate", "--verbosity=0"])
    assert migrated.returncode == 0, migrated.stderr

    _refused(start(BEAT, SNS_TOPIC_ARN="base-wecare-digital"), "(wecare.E003) SNS_TOPIC_ARN")


# --- Security refusals at start (issue 13) -----------------------------------------------------
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


def test_live_sends_name_a_malformed_aws_account(start, production):
    result = start(CHECK, **{**production, "AWS_ACCOUNT_ID": "my-account"}, SEND_MODE="LIVE")

    _refused(result, "AWS_ACCOUNT_ID='my-account' is not an AWS account id")


def test_without_aws_account_id_live_sends_need_the_account_of_the_sns_topic(start, production):
    other_topic = "arn:aws:sns:us-east-1:111111111111:base-wecare-digital"
    result = start(CHECK, **{**production, "AWS_ACCOUNT_ID": None, "SNS_TOPIC_ARN": other_topic}, SEND_MODE="LIVE")

    _refused(result, "not AWS_ACCOUNT_ID=111111111111")


def test_the_web_process_checks_the_account_when_it_starts(start, production):
    result = start(["-c", "import wecare.wsgi"], **{**production, "AWS_ACCOUNT_ID": "111111111111"}, SEND_MODE="LIVE")

    _refused(result, "WrongAWSAccount: SEND_MODE=LIVE is refused")
