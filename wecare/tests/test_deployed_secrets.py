"""Deployed environments read secrets only from Secrets Manager or a mounted file, never from a plain
variable, and importing the settings makes no network call (the key is read on first use)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from wecare import aws

ROOT = Path(__file__).resolve().parents[2]
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")  # fmt: skip
# A port nothing listens on: any AWS call made while the settings load would fail the start.
NO_AWS = "http://127.0.0.1:9"
SETUP_ONLY = "import django; django.setup(); from django.conf import settings; print('hosts', settings.ALLOWED_HOSTS)"
SHOW_KEY = (
    "import django, hashlib; django.setup(); from django.conf import settings; "
    "print('key-sha256', hashlib.sha256(str(settings.SECRET_KEY).encode()).hexdigest())"
)
SHOW_DB_USER = (
    "import django; django.setup(); from django.db import connection; "
    "connection.ensure_connection(); print('connected as', connection.connection.info.user)"
)


def _postgres_url(with_user: bool = True) -> str:
    db = settings.DATABASES["default"]
    user = f"{db['USER']}@" if with_user else ""
    return f"postgres://{user}{db['HOST']}:{db['PORT']}/{db['NAME']}"


def run(code: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="wecare.settings",
        ENVIRONMENT="production",
        SEND_MODE="DRY_RUN",
        ALLOWED_HOSTS="base.wecare.digital",
        OIDC_CLIENT_ID="app-client",  # production refuses to start without Cognito
        DATABASE_URL=_postgres_url(with_user=False),
        CLOUDWATCH_LOGS_ENABLED="false",
        AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"],
    )
    env.update(overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90, check=False)  # fmt: skip


@pytest.mark.parametrize("environment", ["production", "staging", "preview"])
def test_loading_the_settings_of_a_deployed_environment_calls_no_aws_service(environment):
    result = run(SETUP_ONLY, ENVIRONMENT=environment, AWS_ENDPOINT_URL=NO_AWS, AWS_MAX_ATTEMPTS="1")

    assert result.returncode == 0, result.stderr
    assert "hosts ['base.wecare.digital']" in result.stdout


def test_the_django_key_is_read_from_secrets_manager_on_first_use(aws_endpoint):
    name = f"base-wecare-digital/test-{uuid.uuid4().hex}/django-secret-key"
    aws.client("secretsmanager").create_secret(Name=name, SecretString="key-from-secrets-manager-" + "x" * 40)

    result = run(SHOW_KEY, SECRET_NAME_DJANGO_SECRET_KEY=name)

    expected = hashlib.sha256(("key-from-secrets-manager-" + "x" * 40).encode()).hexdigest()
    assert f"key-sha256 {expected}" in result.stdout, result.stderr


def test_the_django_key_may_come_from_a_mounted_file_without_any_aws_call(tmp_path):
    key_file = tmp_path / "django-secret-key"
    key_file.write_text("key-from-a-mounted-file-" + "y" * 40 + "\n")

    result = run(SHOW_KEY, DJANGO_SECRET_KEY_FILE=str(key_file), AWS_ENDPOINT_URL=NO_AWS)

    expected = hashlib.sha256(("key-from-a-mounted-file-" + "y" * 40).encode()).hexdigest()
    assert f"key-sha256 {expected}" in result.stdout, result.stderr


def test_an_empty_mounted_key_file_is_refused(tmp_path):
    key_file = tmp_path / "empty"
    key_file.write_text("\n")

    result = run(SETUP_ONLY, DJANGO_SECRET_KEY_FILE=str(key_file))

    assert result.returncode != 0
    assert f"DJANGO_SECRET_KEY_FILE='{key_file}' is empty." in result.stderr


def test_a_database_password_in_database_url_is_refused_in_production():
    result = run(SETUP_ONLY, DATABASE_URL="postgres://wecare:hunter2@db.internal:5432/wecare")

    assert result.returncode != 0
    assert "DATABASE_URL must not carry a password in production" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_the_database_user_and_password_come_from_the_rds_managed_secret(aws_endpoint):
    sm = aws.client("secretsmanager")
    good, bad = f"rds!db-{uuid.uuid4().hex}", f"rds!db-{uuid.uuid4().hex}"
    user = settings.DATABASES["default"]["USER"]
    sm.create_secret(Name=good, SecretString=json.dumps({"username": user, "password": "rotated-by-rds"}))
    sm.create_secret(Name=bad, SecretString=json.dumps({"username": "nobody", "password": "rotated-by-rds"}))

    db = settings.DATABASES["default"]
    server = f"postgres://{db['HOST']}:{db['PORT']}/postgres"  # a database that always exists

    connected = run(SHOW_DB_USER, DATABASE_URL=server, DATABASE_SECRET_NAME=good)
    refused = run(SHOW_DB_USER, DATABASE_URL=server, DATABASE_SECRET_NAME=bad)

    assert f"connected as {user}" in connected.stdout, connected.stderr
    assert refused.returncode != 0
    assert '"nobody"' in refused.stderr  # the role named by the secret is the one PostgreSQL was asked for
