"""Settings for WECARE.DIGITAL, read from the environment (12-factor).

Every setting is documented in the README. The environment is validated here, at import time,
so the web process, the Celery worker and every management command refuse to start on a
missing or malformed setting, with a message that names it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from wecare.environments import DEPLOYED_ENVIRONMENTS, django_secret_name, queue_prefix, resource_prefix

BASE_DIR = Path(__file__).resolve().parent.parent

ENVIRONMENTS = ("production", "staging", "preview", "local", "test")
SEND_MODES = ("DRY_RUN", "LIVE")

env = environ.Env()


def _require(name: str) -> str:
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is required: set the environment variable {name}.")
    return value


def _choice(name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = env.str(name, default=default or "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is required: set it to one of {', '.join(choices)}.")
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not valid: use one of {', '.join(choices)}.")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false.")


def _int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ImproperlyConfigured(f"{name}={value} is out of range: use a number between {minimum}{upper}.")
    return value


def _float(name: str, default: float) -> float:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name}={value} must be greater than zero.")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    raw = env.str(name, default="")
    if not raw.strip():
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Environment and send mode ------------------------------------------------------------------
ENVIRONMENT = _choice("ENVIRONMENT", ENVIRONMENTS)
SEND_MODE = _choice("SEND_MODE", SEND_MODES, default="DRY_RUN")
if SEND_MODE == "LIVE" and ENVIRONMENT != "production":
    raise ImproperlyConfigured(
        f"SEND_MODE=LIVE is refused in ENVIRONMENT={ENVIRONMENT}: only production may send for real. "
        "Use SEND_MODE=DRY_RUN."
    )
IS_PRODUCTION = ENVIRONMENT == "production"
# The local username/password form is for local and test, and for a break-glass superuser.
LOCAL_LOGIN_ENABLED = ENVIRONMENT in ("local", "test")

# --- AWS ----------------------------------------------------------------------------------------
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# boto3 reads AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> itself; we only need to know
# whether a local emulator is in use (plain http), e.g. for the SQS broker.
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="")
# The local End User Messaging Social and SMS-Voice v2 of `make run` (localdev/fake_socialmessaging.py)
# must never stand in for the real services of a deployed environment. A process whose every AWS
# endpoint is on loopback reaches no real AWS at all (bench/ runs its workers as production that way).
_AWS_ENDPOINTS = [v for k, v in os.environ.items() if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")]
_NO_REAL_AWS = bool(AWS_ENDPOINT_URL) and all(
    urlparse(url).hostname in ("127.0.0.1", "localhost", "::1") for url in _AWS_ENDPOINTS
)
for _service in ("SOCIALMESSAGING", "PINPOINT_SMS_VOICE_V2"):
    if (
        env.str(f"AWS_ENDPOINT_URL_{_service}", default="")
        and ENVIRONMENT not in ("local", "test")
        and not _NO_REAL_AWS
    ):
        raise ImproperlyConfigured(
            f"AWS_ENDPOINT_URL_{_service} is for ENVIRONMENT=local and test only (this is {ENVIRONMENT}): unset it."
        )
AWS_MAX_ATTEMPTS = _int("AWS_MAX_ATTEMPTS", 3, minimum=1, maximum=10)
AWS_CONNECT_TIMEOUT = _float("AWS_CONNECT_TIMEOUT", 5.0)
AWS_READ_TIMEOUT = _float("AWS_READ_TIMEOUT", 15.0)

SECRETS_CACHE_SECONDS = _int("SECRETS_CACHE_SECONDS", 300)
SECRET_NAME_DJANGO_SECRET_KEY = env.str("SECRET_NAME_DJANGO_SECRET_KEY", default=django_secret_name(ENVIRONMENT))
SECRET_NAME_WHATSAPP_ACCESS_TOKEN = env.str("SECRET_NAME_WHATSAPP_ACCESS_TOKEN", default="wecare/whatsapp-access-token")
SECRET_NAME_META_APP_SECRET = env.str("SECRET_NAME_META_APP_SECRET", default="wecare/meta-app-secret")
SECRET_NAME_OIDC_CLIENT_SECRET = env.str("SECRET_NAME_OIDC_CLIENT_SECRET", default="wecare/oidc-client-secret")
# A mounted file holding the Django key (e.g. a tmpfs secret volume); else Secrets Manager, read lazily.
DJANGO_SECRET_KEY_FILE = env.str("DJANGO_SECRET_KEY_FILE", default="").strip()

# --- Security -----------------------------------------------------------------------------------
TEST_ONLY_SECRET_KEY = "local-only-insecure-key-never-used-outside-local-and-test"  # noqa: S105
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "testserver", "::1", "[::1]")
if ENVIRONMENT in DEPLOYED_ENVIRONMENTS:
    # A deployed environment never reads the key from a plain variable: it comes from a mounted file or
    # from Secrets Manager, read on first use (no network call at import; wecare.E009 checks it at start).
    if env.str("DJANGO_SECRET_KEY", default=""):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY must not be set in {ENVIRONMENT}: the key is read from Secrets Manager "
            "(SECRET_NAME_DJANGO_SECRET_KEY) or a mounted file (DJANGO_SECRET_KEY_FILE)."
        )
    from wecare.aws import lazy_secret, read_secret_file

    if DJANGO_SECRET_KEY_FILE:
        SECRET_KEY = read_secret_file("DJANGO_SECRET_KEY_FILE", DJANGO_SECRET_KEY_FILE)
    else:
        SECRET_KEY = lazy_secret("SECRET_NAME_DJANGO_SECRET_KEY", SECRET_NAME_DJANGO_SECRET_KEY, region=AWS_REGION)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) or [_require("ALLOWED_HOSTS")]
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
    if not SECRET_KEY:
        if ENVIRONMENT not in ("local", "test"):
            raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is required in ENVIRONMENT={ENVIRONMENT}.")
        # The fixed key is public (it is in this file): it serves only a machine's own loopback.
        # A local/test environment answering any other host name is a deployment, and needs its own key.
        _public = [h for h in ALLOWED_HOSTS if h not in LOOPBACK_HOSTS]
        if _public:
            raise ImproperlyConfigured(
                f"ENVIRONMENT={ENVIRONMENT} with ALLOWED_HOSTS={','.join(_public)} needs DJANGO_SECRET_KEY: the "
                "built-in test key is public and serves only localhost. Deploy as staging, preview or production."
            )
        SECRET_KEY = TEST_ONLY_SECRET_KEY

DEBUG = _bool("DJANGO_DEBUG", default=ENVIRONMENT == "local")
if DEBUG and IS_PRODUCTION:
    raise ImproperlyConfigured("DJANGO_DEBUG=true is refused in production.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SESSION_COOKIE_SECURE = IS_PRODUCTION or ENVIRONMENT in ("staging", "preview")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The load balancer ends TLS and says so in X-Forwarded-Proto (it overwrites what a client sent).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production: https only (HTTP is redirected) and browsers told so for a year (HSTS).
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=IS_PRODUCTION)
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 31_536_000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS >= 31_536_000)
# The load balancer's health check calls plain http on the target: it is not redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz"]
SESSION_COOKIE_HTTPONLY = True
# Sessions end after SESSION_IDLE_SECONDS without a request and SESSION_ABSOLUTE_SECONDS after sign-in
# (accounts.middleware.SessionTimeoutMiddleware); the cookie itself lasts no longer than the latter.
SESSION_IDLE_SECONDS = _int("SESSION_IDLE_SECONDS", 8 * 3600, minimum=60)
SESSION_ABSOLUTE_SECONDS = _int("SESSION_ABSOLUTE_SECONDS", 24 * 3600, minimum=60)
if SESSION_IDLE_SECONDS > SESSION_ABSOLUTE_SECONDS:
    raise ImproperlyConfigured("SESSION_IDLE_SECONDS must not exceed SESSION_ABSOLUTE_SECONDS.")
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
# Roles follow Cognito groups: re-read for every OIDC user this often (accounts.tasks.roles_recheck).
ROLE_RECHECK_SECONDS = _int("ROLE_RECHECK_SECONDS", 900, minimum=60)
# Request bodies (not uploaded files) larger than this are refused before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = _int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=262_144)
# Whole request bodies above this are refused (413) before they are read (wecare.limits).
UPLOAD_MAX_BYTES = _int("UPLOAD_MAX_BYTES", 101 * 1024 * 1024, minimum=1024 * 1024)
SNS_MAX_BODY_BYTES = 256 * 1024  # SNS's own maximum message size
# Nested JSON deeper than this is a 400 (wecare.jsonsafe), never a RecursionError.
JSON_MAX_DEPTH = _int("JSON_MAX_DEPTH", 32, minimum=4, maximum=200)

# --- Applications -------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "import_export",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "wecare",
    "accounts",
    "contacts",
    "messaging",
    "bulk",
    "automation",
    "audiences",
    "links",
    "webforms",
]

MIDDLEWARE = [
    "wecare.middleware.RequestContextMiddleware",  # request id on every log line and in the response
    "django.middleware.security.SecurityMiddleware",
    "wecare.limits.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.AuditForbiddenMiddleware",
    "wecare.errors.PlatformErrorMiddleware",  # a PlatformError on a page: its own status, as in the API
    # Last, so it sees the final answer of a password sign-in (django-axes locks out guessers).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "wecare.urls"
WSGI_APPLICATION = "wecare.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Cognito over OIDC first (it answers only when OIDC_CLIENT_ID is set); the password backend refuses
# everyone but a break-glass superuser where OIDC is the way in outside local/test.
# AxesStandaloneBackend comes first: a locked-out account or address is refused before any hashing.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "wecare.auth.CognitoOIDCBackend",
    "accounts.backends.PasswordBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# SQLite is the embedded default; production and CI use PostgreSQL through DATABASE_URL.
DATABASE_URL = env.str("DATABASE_URL", default="").strip()
if IS_PRODUCTION and not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL is required in production (a postgres:// URL).")
try:
    DATABASES = {"default": env.db_url_config(DATABASE_URL or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
except Exception as exc:  # django-environ raises several kinds for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
# django-environ turns an unknown scheme into an engine name and a URL without a scheme into the
# dummy backend: refuse both here rather than fail later without naming the variable.
if DATABASES["default"].get("ENGINE") not in ("django.db.backends.postgresql", "django.db.backends.sqlite3") or (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not DATABASES["default"].get("NAME")
):
    _scheme = DATABASE_URL.split("://", 1)[0] if "://" in DATABASE_URL else "(none)"
    raise ImproperlyConfigured(
        f"DATABASE_URL is malformed (scheme {_scheme}): use postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH."
    )
DATABASES["default"]["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` writes from the web, the worker, the bulk worker's processes and their send threads,
    # and beat at once. WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
    # BEGIN, so a transaction waits its turn (busy timeout) instead of failing with "database is
    # locked" when it upgrades from read to write (SQLite cannot wait then). README "Database".
    _sqlite_timeout = _int("SQLITE_BUSY_TIMEOUT_SECONDS", 30, minimum=1, maximum=600)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": _sqlite_timeout,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-20000; PRAGMA temp_store=MEMORY"
        ),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Deployed: the database password comes from the RDS-managed secret (read at connect time, so a rotation
# is picked up), never from a plain variable: DATABASE_URL then carries host, port and name only.
DATABASE_SECRET_NAME = env.str("DATABASE_SECRET_NAME", default="").strip()
if ENVIRONMENT in DEPLOYED_ENVIRONMENTS and DATABASES["default"].get("PASSWORD"):
    raise ImproperlyConfigured(
        f"DATABASE_URL must not carry a password in {ENVIRONMENT}: set DATABASE_SECRET_NAME to the RDS-managed "
        "secret and give DATABASE_URL as postgres://HOST:PORT/NAME."
    )
if DATABASE_SECRET_NAME:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_SECRET_NAME needs a postgres:// DATABASE_URL.")
    DATABASES["default"]["ENGINE"] = "wecare.db.postgresql"
    DATABASES["default"]["SECRET_NAME"] = DATABASE_SECRET_NAME

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Resource names (the seeds' names are the defaults) ----------------------------------------
COGNITO_USER_POOL_ID = env.str("COGNITO_USER_POOL_ID", default="us-east-1_CC9u1fYh6")
WHATSAPP_PHONE_NUMBER_IDS = _list(
    "WHATSAPP_PHONE_NUMBER_IDS",
    [
        "phone-number-id-baa217c3f11b4ffd956f6f3afb44ce54",
        "phone-number-id-1447bc72d1b040f4bf2341c9e04b2e06",
    ],
)
SMS_POOL_ID = env.str("SMS_POOL_ID", default="pool-6fbf5a5f390d4eeeaa7dbae39d78933e")
SES_SENDER_EMAIL = env.str("SES_SENDER_EMAIL", default="one@wecare.digital")
SES_SENDER_NAME = env.str("SES_SENDER_NAME", default="WECARE.DIGITAL")
MEDIA_BUCKET = env.str("MEDIA_BUCKET", default="auth.wecare.digital")
MEDIA_INCOMING_PREFIX = env.str("MEDIA_INCOMING_PREFIX", default="whatsapp-media/whatsapp-media-incoming/")
MEDIA_OUTGOING_PREFIX = env.str("MEDIA_OUTGOING_PREFIX", default="whatsapp-media/whatsapp-media-outgoing/")
REPORT_BUCKET = env.str("REPORT_BUCKET", default="stream.wecare.digital")
REPORT_PREFIX = env.str("REPORT_PREFIX", default="base-wecare-digital/reports/")
SNS_TOPIC_ARN = env.str("SNS_TOPIC_ARN", default="arn:aws:sns:us-east-1:809904170947:base-wecare-digital")
# The AWS account LIVE sends must come from (by default the account of SNS_TOPIC_ARN): the credentials'
# account (STS) is compared with it once at start (wecare.aws.live_account_verify, run by the
# wecare.E130 check, the WSGI start and the workers), never at import.
_topic_account = SNS_TOPIC_ARN.split(":")[4] if SNS_TOPIC_ARN.count(":") >= 5 else ""
AWS_ACCOUNT_ID = env.str("AWS_ACCOUNT_ID", default=_topic_account).strip()
if SEND_MODE == "LIVE" and not (len(AWS_ACCOUNT_ID) == 12 and AWS_ACCOUNT_ID.isdigit()):
    raise ImproperlyConfigured(
        f"AWS_ACCOUNT_ID={AWS_ACCOUNT_ID!r} is not an AWS account id: SEND_MODE=LIVE needs the 12-digit account "
        "that may send for real (by default the account of SNS_TOPIC_ARN)."
    )
LOG_GROUP_NAME = env.str("LOG_GROUP_NAME", default="/base-wecare-digital/common")
CLOUDWATCH_LOGS_ENABLED = _bool("CLOUDWATCH_LOGS_ENABLED", default=IS_PRODUCTION)
BEDROCK_KNOWLEDGE_BASE_ID = env.str("BEDROCK_KNOWLEDGE_BASE_ID", default="FZBPKGTOYE")
BEDROCK_AGENT_ID = env.str("BEDROCK_AGENT_ID", default="HQNT0JXN8G")
BEDROCK_MODEL_ID = env.str("BEDROCK_MODEL_ID", default="amazon.nova-pro-v1:0")
# --- AI suggested replies (automation/) ------------------------------------------------------------
# Bedrock is used when the agent alias is set; without it (as in `make run`) suggestions come from
# the local knowledge base (BM25). AI on/off itself is a stored switch Admins change at run time.
BEDROCK_AGENT_ALIAS_ID = env.str("BEDROCK_AGENT_ALIAS_ID", default="")
BEDROCK_GUARDRAIL_ID = env.str("BEDROCK_GUARDRAIL_ID", default="")
BEDROCK_GUARDRAIL_VERSION = env.str("BEDROCK_GUARDRAIL_VERSION", default="DRAFT")
AI_ENABLED_DEFAULT = _bool("AI_ENABLED_DEFAULT", default=True)  # until an Admin first sets the switch
AI_CALL_RETRIES = _int("AI_CALL_RETRIES", 2, minimum=0, maximum=2)  # per Bedrock call, after the first try
AI_CALL_TIMEOUT_SECONDS = _float("AI_CALL_TIMEOUT_SECONDS", 20.0)
AI_BREAKER_FAILURES = _int("AI_BREAKER_FAILURES", 5, minimum=1)  # failed suggestions in a row open it
AI_BREAKER_PAUSE_SECONDS = _int("AI_BREAKER_PAUSE_SECONDS", 300, minimum=10)
AI_CONTEXT_MESSAGES = _int("AI_CONTEXT_MESSAGES", 6, minimum=0, maximum=50)
AI_RETRIEVE_RESULTS = _int("AI_RETRIEVE_RESULTS", 5, minimum=1, maximum=100)
AI_KB_MIN_SCORE = _float("AI_KB_MIN_SCORE", 1.0)  # BM25 score under which the local KB suggests nothing
AI_KB_IMPORT_MAX_BYTES = _int("AI_KB_IMPORT_MAX_BYTES", 2_000_000, minimum=1024)

QUEUE_DEFAULT = env.str("QUEUE_DEFAULT", default="default-queue")
QUEUE_OUTBOUND = env.str("QUEUE_OUTBOUND", default="outbound-queue")
QUEUE_INBOUND = env.str("QUEUE_INBOUND", default="inbound-queue")
QUEUE_BULK = env.str("QUEUE_BULK", default="bulk-queue")
QUEUE_INBOUND_DLQ = env.str("QUEUE_INBOUND_DLQ", default="inbound-dlq")
QUEUE_OUTBOUND_DLQ = env.str("QUEUE_OUTBOUND_DLQ", default="outbound-dlq")
QUEUE_BULK_DLQ = env.str("QUEUE_BULK_DLQ", default="bulk-dlq")
QUEUE_AI = env.str("QUEUE_AI", default="ai-queue")  # AI suggestions: never in the way of inbound work

# Each environment has its own queues and tables (wecare.environments): base-wecare-digital-[ENV-]NAME.
DYNAMODB_TABLE_PREFIX = env.str("DYNAMODB_TABLE_PREFIX", default="").strip() or resource_prefix(ENVIRONMENT)
# The HTTPS endpoint subscribed to SNS_TOPIC_ARN (deploy/compute.yaml); `bootstrap_aws --check` verifies it.
SNS_WEBHOOK_URL = env.str("SNS_WEBHOOK_URL", default="").strip()

# --- Inbound WhatsApp through SNS (messaging.sns, messaging.inbound) --------------------------------
# Dotted paths of fetch(url) -> bytes. Tests and the benchmark point these at local certificates;
# production must fetch from the real SNS hosts over https.
SNS_CERT_FETCHER = env.str("SNS_CERT_FETCHER", default="messaging.sns.fetch_certificate")
SNS_SUBSCRIBE_FETCHER = env.str("SNS_SUBSCRIBE_FETCHER", default="messaging.sns.fetch_subscribe_url")
if IS_PRODUCTION and (
    SNS_CERT_FETCHER != "messaging.sns.fetch_certificate"
    or SNS_SUBSCRIBE_FETCHER != "messaging.sns.fetch_subscribe_url"
):
    raise ImproperlyConfigured("SNS_CERT_FETCHER and SNS_SUBSCRIBE_FETCHER may be changed only outside production.")
if ENVIRONMENT != "local" and SNS_CERT_FETCHER.startswith("localdev."):
    # The local SNS certificate of `make run` (localdev/sns_local.py) is trusted on a developer's machine only.
    raise ImproperlyConfigured(f"SNS_CERT_FETCHER={SNS_CERT_FETCHER} is for ENVIRONMENT=local only.")
# The topic is set to SignatureVersion 2 (SHA256); version 1 (SHA1) is refused in production.
SNS_ALLOW_SIGNATURE_V1 = _bool("SNS_ALLOW_SIGNATURE_V1", default=not IS_PRODUCTION)
if IS_PRODUCTION and SNS_ALLOW_SIGNATURE_V1:
    raise ImproperlyConfigured("SNS_ALLOW_SIGNATURE_V1=true is refused in production: the topic signs with version 2.")
SNS_CERT_CACHE_SECONDS = _int("SNS_CERT_CACHE_SECONDS", 86400, minimum=60)
# SNS retries an HTTP endpoint for at most an hour: an older signed message is a replay. 0 = no limit.
SNS_MAX_MESSAGE_AGE_SECONDS = _int("SNS_MAX_MESSAGE_AGE_SECONDS", 86400)
INBOUND_MARK_AS_READ = _bool("INBOUND_MARK_AS_READ", default=False)
INBOUND_REACT_THUMBS_UP = _bool("INBOUND_REACT_THUMBS_UP", default=False)
INBOUND_OPT_OUT_KEYWORDS = [
    k.upper()
    for k in _list(
        "INBOUND_OPT_OUT_KEYWORDS", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
    )
]
INBOUND_OPT_IN_KEYWORDS = [k.upper() for k in _list("INBOUND_OPT_IN_KEYWORDS", ["START"])]
if set(INBOUND_OPT_OUT_KEYWORDS) & set(INBOUND_OPT_IN_KEYWORDS):
    raise ImproperlyConfigured(
        "INBOUND_OPT_OUT_KEYWORDS and INBOUND_OPT_IN_KEYWORDS share "
        f"{', '.join(sorted(set(INBOUND_OPT_OUT_KEYWORDS) & set(INBOUND_OPT_IN_KEYWORDS)))}: a keyword means one thing."
    )
# A worker holds the de-duplication claim of one inbound message this long; if it dies, another
# copy takes the claim over after it. Must exceed the longest processing (media download included).
INBOUND_CLAIM_LEASE_SECONDS = _int("INBOUND_CLAIM_LEASE_SECONDS", 300, minimum=30)
INBOUND_TASK_MAX_RETRIES = _int("INBOUND_TASK_MAX_RETRIES", 5, maximum=20)
INBOUND_RETRY_DELAY_SECONDS = _int("INBOUND_RETRY_DELAY_SECONDS", 10, minimum=1, maximum=900)
# The inbound outbox (messaging.inbound.outbox): events per task message (ten messages per SendMessageBatch),
# and how long an event handed to the broker may stay pending before it is relayed again.
INBOUND_EVENTS_PER_TASK = _int("INBOUND_EVENTS_PER_TASK", 200, minimum=1, maximum=1000)
INBOUND_RELAY_MAX_PER_ROUND = _int("INBOUND_RELAY_MAX_PER_ROUND", 2000, minimum=10, maximum=5000)
INBOUND_RELAY_STALE_SECONDS = _int("INBOUND_RELAY_STALE_SECONDS", 1200, minimum=60)

# --- Contacts -----------------------------------------------------------------------------------
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="IN").upper()
# Contacts CSV import (contacts.importing): files over this are refused before they are read.
CONTACTS_IMPORT_MAX_BYTES = _int("CONTACTS_IMPORT_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
CONTACTS_IMPORT_PREFIX = env.str("CONTACTS_IMPORT_PREFIX", default="contact-imports/")
# Rows validated and written together (one transaction, a handful of queries); progress is saved per batch.
CONTACTS_IMPORT_BATCH_SIZE = _int("CONTACTS_IMPORT_BATCH_SIZE", 2000, minimum=10, maximum=10_000)
# A running import renews its lease at every batch; a job silent this long lost its worker and is failed.
CONTACTS_IMPORT_LEASE_SECONDS = _int("CONTACTS_IMPORT_LEASE_SECONDS", 600, minimum=30)
# Finished import jobs (their counts and report of rejected rows) are archived and purged after this.
CONTACTS_IMPORT_JOB_RETENTION_DAYS = _int("CONTACTS_IMPORT_JOB_RETENTION_DAYS", 30, minimum=1)

# --- Bulk messaging (bulk/) ---------------------------------------------------------------------
# A bulk job of more recipients than this needs an explicit confirmation of the exact will-send count.
BULK_CONFIRMATION_THRESHOLD = _int("BULK_CONFIRMATION_THRESHOLD", 20)
BULK_MAX_RECIPIENTS = _int("BULK_MAX_RECIPIENTS", 100_000, minimum=1)
# Processes of a bulk worker (`celery worker -Q bulk-queue -c N`); a bulk worker outside 2..5 refuses to start.
BULK_WORKER_CONCURRENCY = _int("BULK_WORKER_CONCURRENCY", 2, minimum=2, maximum=5)
# Sends in flight at once within one chunk (threads; they never touch the database): two numbers at 80/s with
# ~50 ms a call and the token pacing need about 16.
BULK_SEND_THREADS = _int("BULK_SEND_THREADS", 16, minimum=1, maximum=32)
# A chunk's lease, renewed by its worker while it runs; after a crash another worker takes over once it expires.
BULK_CHUNK_LEASE_SECONDS = _int("BULK_CHUNK_LEASE_SECONDS", 60, minimum=2, maximum=900)
BULK_CHUNK_MAX_RETRIES = _int("BULK_CHUNK_MAX_RETRIES", 3, maximum=10)
# The sweeper queues a chunk again when its message has been waiting this long (lost message).
BULK_STALE_CHUNK_SECONDS = _int("BULK_STALE_CHUNK_SECONDS", 900, minimum=60)

# --- Bulk scheduling, quiet hours and cost (bulk.scheduling, bulk.quiet_hours, bulk.pricing) -----
# The business's time zone: a scheduled job's default, and a recipient's when their number says none.
BUSINESS_TIME_ZONE = env.str("BUSINESS_TIME_ZONE", default=TIME_ZONE)
# How often beat starts due scheduled jobs and resumes recipients whose quiet hours ended.
BULK_SCHEDULER_SECONDS = _float("BULK_SCHEDULER_SECONDS", 30.0)
# When each (channel, category) may be sent, in the recipient's local time (their number's country).
# JSON list of {"channel", "category", "from": "HH:MM", "until": "HH:MM"}; "[]" turns quiet hours off.
BULK_QUIET_HOURS = env.json(
    "BULK_QUIET_HOURS", default=[{"channel": "sms", "category": "promotional", "from": "09:00", "until": "21:00"}]
)
# WhatsApp price per message: {category: {country ISO code or "*": price}} in WHATSAPP_PRICE_CURRENCY.
# The defaults are Meta's 2025 list rates for a few markets; set the table from your current rate card.
WHATSAPP_PRICE_CURRENCY = env.str("WHATSAPP_PRICE_CURRENCY", default="USD")
WHATSAPP_PRICE_TABLE = env.json(
    "WHATSAPP_PRICE_TABLE",
    default={
        "marketing": {"IN": 0.0107, "US": 0.025, "GB": 0.0529, "*": 0.0604},
        "utility": {"IN": 0.0014, "US": 0.004, "GB": 0.022, "*": 0.0077},
        "authentication": {"IN": 0.0014, "US": 0.0135, "GB": 0.0358, "*": 0.0424},
        "service": {"*": 0.0},
    },
)

# --- Delivery feedback and suppression (messaging.feedback) -----------------------------------
# SES and SMS configuration sets whose event destination is SNS_TOPIC_ARN (bootstrap_aws locally,
# deploy/compute.yaml in AWS): every email and SMS names one, so bounces, complaints and receipts arrive.
SES_CONFIGURATION_SET = env.str("SES_CONFIGURATION_SET", default="base-wecare-digital-email").strip()
SMS_CONFIGURATION_SET = env.str("SMS_CONFIGURATION_SET", default="base-wecare-digital-sms").strip()
# Where people reach the platform from outside (the unsubscribe link in emails): https in AWS.
_public_default = (
    f"https://{ALLOWED_HOSTS[0].lstrip('.')}"
    if ENVIRONMENT in DEPLOYED_ENVIRONMENTS and ALLOWED_HOSTS
    else "http://localhost:8000"
)
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default=_public_default).strip().rstrip("/")
if ENVIRONMENT in DEPLOYED_ENVIRONMENTS and not PUBLIC_BASE_URL.startswith("https://"):
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} must be an https:// URL in {ENVIRONMENT}.")
# An optional mailbox for List-Unsubscribe's mailto (RFC 2369), e.g. unsubscribe@wecare.digital.
EMAIL_UNSUBSCRIBE_MAILTO = env.str("EMAIL_UNSUBSCRIBE_MAILTO", default="").strip()
# How long an unsubscribe link works: long enough for an old email, short enough to bound a leaked one.
EMAIL_UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = _int("EMAIL_UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", 180, minimum=1)
# Soft bounces in a row (no delivery between them) after which an address is suppressed.
EMAIL_SOFT_BOUNCE_LIMIT = _int("EMAIL_SOFT_BOUNCE_LIMIT", 3, minimum=1)
# WhatsApp 131049 (per-user marketing limit) is Meta saying "not now": marketing waits this long.
WHATSAPP_MARKETING_LIMIT_SUPPRESSION_DAYS = _int("WHATSAPP_MARKETING_LIMIT_SUPPRESSION_DAYS", 7, minimum=1)
# WhatsApp 131026 (undeliverable: no WhatsApp, old app, terms not accepted) may change: retried after this.
WHATSAPP_UNDELIVERABLE_SUPPRESSION_DAYS = _int("WHATSAPP_UNDELIVERABLE_SUPPRESSION_DAYS", 30, minimum=1)

# --- Audit --------------------------------------------------------------------------------------
AUDIT_RETENTION_DAYS = _int("AUDIT_RETENTION_DAYS", 180, minimum=1)

# --- Retention archive (wecare.maintenance, wecare.archive) ---------------------------------------
INBOUND_EVENT_RETENTION_DAYS = _int("INBOUND_EVENT_RETENTION_DAYS", 30, minimum=1)
ARCHIVE_BUCKET = env.str("ARCHIVE_BUCKET", default=REPORT_BUCKET)
ARCHIVE_PREFIX = env.str("ARCHIVE_PREFIX", default="archive/")
if not ARCHIVE_PREFIX.endswith("/"):
    raise ImproperlyConfigured(f"ARCHIVE_PREFIX={ARCHIVE_PREFIX!r} must end with /.")

# --- Outbound messaging (messaging.services, messaging.safety, messaging.ratelimit, messaging.tier) --
WHATSAPP_META_API_VERSION = env.str("WHATSAPP_META_API_VERSION", default="v20.0")
if not WHATSAPP_META_API_VERSION.startswith("v") or not WHATSAPP_META_API_VERSION[1:].replace(".", "").isdigit():
    raise ImproperlyConfigured(f"WHATSAPP_META_API_VERSION={WHATSAPP_META_API_VERSION!r} is not like v20.0.")
SMS_MESSAGE_TYPE = _choice("SMS_MESSAGE_TYPE", ("TRANSACTIONAL", "PROMOTIONAL"), default="TRANSACTIONAL")
# Voice (messaging.channels.voice): text-to-speech calls with SendVoiceMessage from this origination
# identity (a voice-capable phone number, its ARN, or a pool), in this Polly voice, with events from this
# configuration set (its SNS event destination is the topic of /webhooks/sns/). Bodies longer than
# VOICE_MAX_CHARS (text or SSML, at most the API's 6000) are refused by the gate.
VOICE_ORIGINATION_IDENTITY = env.str("VOICE_ORIGINATION_IDENTITY", default=SMS_POOL_ID).strip()
VOICE_ID = env.str("VOICE_ID", default="JOANNA").strip().upper()
VOICE_CONFIGURATION_SET = env.str("VOICE_CONFIGURATION_SET", default="wecare-voice").strip()
VOICE_MAX_CHARS = _int("VOICE_MAX_CHARS", 1000, minimum=1, maximum=6000)
# RCS (messaging.channels.rcs): SendRcsMessage from this RCS agent (its id or ARN) only. Never a pool or
# a phone number: with those AWS falls back to SMS, and the recipient may not have opted in to SMS.
# Empty: RCS is not set up, and the gate refuses RCS sends saying so.
RCS_AGENT_ID = env.str("RCS_AGENT_ID", default="").strip()
if RCS_AGENT_ID and (
    ":pool/" in RCS_AGENT_ID or RCS_AGENT_ID.startswith(("pool-", "phone-", "+")) or ":phone-number/" in RCS_AGENT_ID
):
    raise ImproperlyConfigured(
        f"RCS_AGENT_ID={RCS_AGENT_ID!r} is a pool or a phone number: RCS is sent from the RCS agent only "
        "(a pool or number would fall back to SMS). Set the agent's id or ARN."
    )
RCS_CONFIGURATION_SET = env.str("RCS_CONFIGURATION_SET", default="wecare-rcs").strip()
RCS_MAX_CHARS = _int("RCS_MAX_CHARS", 3072, minimum=1, maximum=3072)
# Provider errors that may pass (throttling, 5xx, timeouts) are retried this many times by the task,
# with exponential backoff and jitter; botocore itself makes one attempt per provider call.
OUTBOUND_MAX_RETRIES = _int("OUTBOUND_MAX_RETRIES", 3, maximum=3)
OUTBOUND_RETRY_BASE_SECONDS = _float("OUTBOUND_RETRY_BASE_SECONDS", 2.0)
OUTBOUND_RETRY_MAX_SECONDS = _float("OUTBOUND_RETRY_MAX_SECONDS", 60.0)
if OUTBOUND_RETRY_MAX_SECONDS > 900:
    raise ImproperlyConfigured("OUTBOUND_RETRY_MAX_SECONDS must be at most 900 (the longest SQS delay).")
# Token buckets in DynamoDB shared by every worker, in sends (requests) per second.
RATE_LIMIT_WHATSAPP_PER_PHONE = _float("RATE_LIMIT_WHATSAPP_PER_PHONE", 80.0)
RATE_LIMIT_EUM_SOCIAL_ACCOUNT = _float("RATE_LIMIT_EUM_SOCIAL_ACCOUNT", 1000.0)
RATE_LIMIT_WHATSAPP_MEDIA = _float("RATE_LIMIT_WHATSAPP_MEDIA", 100.0)
RATE_LIMIT_SMS = _float("RATE_LIMIT_SMS", 5.0)
RATE_LIMIT_EMAIL = _float("RATE_LIMIT_EMAIL", 10.0)
RATE_LIMIT_VOICE = _float("RATE_LIMIT_VOICE", 1.0)  # calls per second (a call is billed per minute)
RATE_LIMIT_RCS = _float("RATE_LIMIT_RCS", 10.0)
# A full bucket holds this many seconds' worth of tokens (the largest burst, at least one token). Small:
# a provider's "80 per second" must hold in every second, the first one of a job included.
RATE_LIMIT_BURST_SECONDS = _float("RATE_LIMIT_BURST_SECONDS", 0.02)
# Past the limit a send waits in the worker up to this long, else it is re-queued with a delay.
RATE_LIMIT_MAX_WAIT_SECONDS = _float("RATE_LIMIT_MAX_WAIT_SECONDS", 2.0)
# A worker takes this many seconds' worth of tokens in one DynamoDB write (at most RATE_LIMIT_BATCH_MAX)
# and spends each at its own time, at most RATE_LIMIT_TOKEN_GRACE_SECONDS late (else it expires).
RATE_LIMIT_BATCH_SECONDS = _float("RATE_LIMIT_BATCH_SECONDS", 0.1)
RATE_LIMIT_BATCH_MAX = _int("RATE_LIMIT_BATCH_MAX", 50, minimum=1, maximum=1000)
RATE_LIMIT_TOKEN_GRACE_SECONDS = _float("RATE_LIMIT_TOKEN_GRACE_SECONDS", 0.05)
# WhatsApp messaging tier: business-initiated conversations per phone number per rolling 24 hours.
WHATSAPP_TIER_LIMIT = _int("WHATSAPP_TIER_LIMIT", 250, minimum=1)
WHATSAPP_TIER_ALERT_PERCENT = _int("WHATSAPP_TIER_ALERT_PERCENT", 80, minimum=1, maximum=100)

# --- Celery on SQS ------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="sqs://")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "region": AWS_REGION,
    # A local emulator speaks plain http; real SQS is https.
    "is_secure": not AWS_ENDPOINT_URL.startswith("http://"),
    # Only used when kombu creates a queue; deploy/data.yaml and bootstrap_aws make them with this value.
    "visibility_timeout": _int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=30),
    # kombu waits this long after an empty receive, and also while a worker's one prefetched task
    # runs before it looks again: at 1.0 s a busy queue (inbound statuses) lost up to a second per task.
    "polling_interval": _float("CELERY_POLLING_INTERVAL", 0.1),
    "wait_time_seconds": _int("CELERY_WAIT_TIME_SECONDS", 1, maximum=20),
    "queue_name_prefix": env.str("CELERY_QUEUE_PREFIX", default="").strip() or queue_prefix(ENVIRONMENT),
}
CELERY_TASK_DEFAULT_QUEUE = QUEUE_DEFAULT
# Each workload has its own queue, so a bulk job never delays a one-to-one send or an inbound event.
CELERY_TASK_ROUTES = {
    "messaging.tasks.outbound.*": {"queue": QUEUE_OUTBOUND},
    "messaging.tasks.inbound.*": {"queue": QUEUE_INBOUND},
    "bulk.tasks.*": {"queue": QUEUE_BULK},
    "automation.tasks.*": {"queue": QUEUE_AI},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic job, in this one place; the DatabaseScheduler copies these entries into its tables
# at start-up (the admin shows them under "Periodic tasks"). Times are UTC.
CELERY_BEAT_SCHEDULE = {
    "purge-expired": {
        "task": "wecare.purge_expired",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 6 * 3600},  # a missed night is caught up by the next, not stacked
    },
    "bulk-scheduler": {
        "task": "bulk.tasks.bulk_scheduler_tick",
        "schedule": BULK_SCHEDULER_SECONDS,  # scheduled jobs start and quiet hours end within this
        "options": {"expires": BULK_SCHEDULER_SECONDS},
    },
    "bulk-sweep": {
        "task": "bulk.tasks.bulk_sweep",
        "schedule": 60.0,
        "options": {"expires": 55},  # one sweep at a time is enough
    },
    "roles-recheck": {
        "task": "accounts.roles_recheck",
        "schedule": 300.0,  # each user is looked up at most every ROLE_RECHECK_SECONDS
        "options": {"expires": 290},
    },
    "observe-queues": {
        "task": "wecare.observe_queues",
        "schedule": 60.0,
        "options": {"expires": 55},  # a depth a minute old is worth nothing
    },
    "inbound-outbox-relay": {
        "task": "messaging.tasks.inbound.inbound_outbox_relay_task",
        "schedule": 5.0,
        "options": {"expires": 4},  # a safety net beside the relay loop: never stacked
    },
    "sync-whatsapp-templates": {
        "task": "messaging.sync_whatsapp_templates",
        "schedule": crontab(minute="*/30"),
        "options": {"expires": 25 * 60},  # never two syncs stacked
    },
    "contact-import-sweep": {
        "task": "contacts.tasks.contact_import_jobs_sweep_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "ai-suggestions-sweep": {
        "task": "automation.tasks.suggestions_sweep",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
}
# Tests may run tasks in-process; the real worker is used where behaviour depends on it.
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True

# --- Sign-in: Cognito over OIDC (browser, /oidc/) and Cognito bearer tokens (REST) -------------
# OIDC is on when OIDC_CLIENT_ID is set. Endpoints are discovered from the issuer; each OIDC_OP_*
# setting overrides the discovered value. The client secret is read from Secrets Manager
# (SECRET_NAME_OIDC_CLIENT_SECRET; empty for a public app client), never from a plain variable.
_pool_region = COGNITO_USER_POOL_ID.split("_", 1)[0] if "_" in COGNITO_USER_POOL_ID else AWS_REGION
OIDC_ISSUER = env.str(
    "OIDC_ISSUER", default=f"https://cognito-idp.{_pool_region}.amazonaws.com/{COGNITO_USER_POOL_ID}"
).rstrip("/")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="").strip()
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED and not OIDC_ISSUER.startswith("https://") and ENVIRONMENT not in ("local", "test"):
    raise ImproperlyConfigured(f"OIDC_ISSUER={OIDC_ISSUER!r} must be an https:// URL in ENVIRONMENT={ENVIRONMENT}.")
OIDC_HOSTED_DOMAIN = env.str("OIDC_HOSTED_DOMAIN", default="sso.wecare.digital").strip()
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
# Cognito publishes no end_session_endpoint: its hosted domain's /logout ends the Cognito session.
OIDC_OP_LOGOUT_ENDPOINT = env.str(
    "OIDC_OP_LOGOUT_ENDPOINT", default=f"https://{OIDC_HOSTED_DOMAIN}/logout" if OIDC_HOSTED_DOMAIN else ""
)
OIDC_LOGOUT_REDIRECT_PARAM = env.str("OIDC_LOGOUT_REDIRECT_PARAM", default="logout_uri")
OIDC_LOGOUT_REDIRECT_URL = env.str("OIDC_LOGOUT_REDIRECT_URL", default="")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_TOKEN_USE_BASIC_AUTH = _bool("OIDC_TOKEN_USE_BASIC_AUTH", default=True)
OIDC_TIMEOUT = _float("OIDC_TIMEOUT", 10.0)
OIDC_DISCOVERY_CACHE_SECONDS = _int("OIDC_DISCOVERY_CACHE_SECONDS", 3600, minimum=60)
OIDC_JWKS_CACHE_SECONDS = _int("OIDC_JWKS_CACHE_SECONDS", 3600, minimum=60)
OIDC_JWKS_MIN_REFRESH_SECONDS = _int("OIDC_JWKS_MIN_REFRESH_SECONDS", 60, minimum=1, maximum=3600)
OIDC_CLOCK_SKEW_SECONDS = _int("OIDC_CLOCK_SKEW_SECONDS", 30, maximum=300)
OIDC_REQUIRE_VERIFIED_EMAIL = _bool("OIDC_REQUIRE_VERIFIED_EMAIL", default=True)
OIDC_REDIRECT_FIELD_NAME = "next"
# --- Link: tracked short links (links/) ----------------------------------------------------------
# The public address short links are shown and QR-coded with (https://go.example.com); empty: the
# address the page was opened at.
LINK_BASE_URL = env.str("LINK_BASE_URL", default="").rstrip("/")
if LINK_BASE_URL and not LINK_BASE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"LINK_BASE_URL={LINK_BASE_URL!r} must be an http(s):// address.")
# Each web process keeps a link this long before reading it again (disable/expiry take this long).
LINK_CACHE_SECONDS = _float("LINK_CACHE_SECONDS", 5.0)
# Redirects per source address per minute, per web process.
LINK_RATE_LIMIT_PER_MINUTE = _int("LINK_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
# Clicks are written in batches this often (0: each click at once, as the tests do).
LINK_CLICK_FLUSH_SECONDS = (
    0.0
    if ENVIRONMENT == "test" and not env.str("LINK_CLICK_FLUSH_SECONDS", default="")
    else _float("LINK_CLICK_FLUSH_SECONDS", 0.2)
)
LINK_CLICK_BATCH = _int("LINK_CLICK_BATCH", 500, minimum=1)
LINK_CLICK_BUFFER_MAX = _int("LINK_CLICK_BUFFER_MAX", 100_000, minimum=1000)

# Behind a load balancer, how many proxies append to X-Forwarded-For (for the source IP in the audit).
TRUSTED_PROXY_HOPS = _int("TRUSTED_PROXY_HOPS", 0, maximum=5)
# Production signs in through Cognito: without it the password form would be open to everyone.
if IS_PRODUCTION and not OIDC_ENABLED:
    raise ImproperlyConfigured(
        "OIDC_CLIENT_ID is required in production: staff sign in with Cognito (set OIDC_CLIENT_ID and "
        "COGNITO_USER_POOL_ID). Without it the password form would be the way in for everyone; the "
        "password stays only for a break-glass superuser an Admin enabled."
    )

# --- Password guessing (django-axes) -------------------------------------------------------------
# Failed password sign-ins are counted per account and, separately, per source address (the client
# address the load balancer saw, accounts.services.client_ip); at the limit both are locked for
# AXES_COOLOFF_TIME and the form answers 429 before any password is hashed. Each lockout is audited,
# and an Admin alert goes out when a break-glass account is locked (accounts.signals).
AXES_FAILURE_LIMIT = _int("AXES_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = _int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours, as django-axes wants
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "accounts.services.client_ip"
AXES_HANDLER = "accounts.lockout.PasswordAttemptHandler"
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = True

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "wecare.auth.CognitoBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RolePermission"],
    # JSON with a nesting limit (wecare.jsonsafe); forms and multipart as DRF has them.
    "DEFAULT_PARSER_CLASSES": [
        "wecare.jsonsafe.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "wecare.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WECARE.DIGITAL API",
    "DESCRIPTION": "Contacts, consent and messaging over WhatsApp, SMS, Email, voice and RCS.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # One name for the form's "asked?" choice, shared by its name, phone and email fields.
    "ENUM_NAME_OVERRIDES": {"FormFieldAskEnum": "webforms.models.Ask"},
}


# --- Content Security Policy (django-csp 4) -----------------------------------------------------
def _origin(url: str) -> str:
    return "/".join(url.rstrip("/").split("/", 3)[:3])


# Where pre-signed links to the media bucket point (messaging.selectors.media_presigned_url): the S3
# endpoint when one is set (the local emulator), else S3's virtual-hosted and path-style hosts.
_s3_endpoint = env.str("AWS_ENDPOINT_URL_S3", default="") or AWS_ENDPOINT_URL
MEDIA_URL_ORIGINS = _list(
    "MEDIA_URL_ORIGINS",
    [_origin(_s3_endpoint)]
    if _s3_endpoint
    else [
        f"https://{MEDIA_BUCKET}.s3.{AWS_REGION}.amazonaws.com",
        f"https://{MEDIA_BUCKET}.s3.amazonaws.com",
        f"https://s3.{AWS_REGION}.amazonaws.com",
        "https://s3.amazonaws.com",
    ],
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "https:", "http:"] if not IS_PRODUCTION else ["'self'", "data:", "https:"],
        "connect-src": ["'self'"],
        # Inbound video and audio play inline from pre-signed links to the media bucket.
        "media-src": ["'self'", *MEDIA_URL_ORIGINS],
        "font-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
if OIDC_ENABLED and OIDC_OP_LOGOUT_ENDPOINT.startswith(("https://", "http://")):
    # Sign-out is a form POST answered by a redirect to the provider's logout: browsers apply
    # form-action to that redirect too.
    _logout_origin = "/".join(OIDC_OP_LOGOUT_ENDPOINT.split("/", 3)[:3])
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(_logout_origin)

# --- Forms (webforms): public consent-capture pages at /f/<slug> ---------------------------------------
# Submissions accepted per source address per hour (a DynamoDB token bucket, shared by every web process).
FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR = _int("FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR", 10, minimum=1)
# How long the link in a double opt-in email works (a signed token; the email goes out within 24 hours).
FORMS_CONFIRM_LINK_HOURS = _int("FORMS_CONFIRM_LINK_HOURS", 48, minimum=1, maximum=24 * 30)
# How long a rendered form may be submitted (its signed anti-forgery token).
FORMS_TOKEN_MAX_AGE_SECONDS = _int("FORMS_TOKEN_MAX_AGE_SECONDS", 6 * 3600, minimum=300)
# Sites that may frame every form (each form adds its own): origins, comma-separated.
FORMS_EMBED_ORIGINS = _list("FORMS_EMBED_ORIGINS", [])
for _origin in FORMS_EMBED_ORIGINS:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", _origin):
        raise ImproperlyConfigured(
            f"FORMS_EMBED_ORIGINS: {_origin!r} is not an origin; use scheme and host, e.g. https://www.example.org."
        )

# --- Logging (wecare.logs) and metrics (wecare.metrics) -------------------------------------------
# One JSON object per line in every process (web, workers, beat, commands), everywhere: what a test or
# a developer sees is what CloudWatch gets. LOG_FORMAT=console prints readable lines for a terminal.
# Phones, emails, message bodies and secrets are masked by a filter on every handler, at every level.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = _choice("LOG_FORMAT", ("json", "console"), default="json")
_log_filters = ["context", "masking"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "wecare.logs.ContextFilter"},
        "masking": {"()": "wecare.logs.MaskingFilter"},
    },
    "formatters": {
        "json": {"()": "wecare.logs.JsonFormatter"},
        "console": {"()": "wecare.logs.ConsoleFormatter"},
        "emf": {"()": "wecare.metrics.EmfFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": _log_filters,
            "stream": sys.stderr,
        },
        # Metrics in the embedded metric format: the line is the EMF object itself, never masked.
        "emf": {"class": "logging.StreamHandler", "formatter": "emf", "stream": sys.stderr},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "wecare.metrics.emf": {"handlers": ["emf"], "level": "INFO", "propagate": False},
    },
}
if CLOUDWATCH_LOGS_ENABLED:
    for _name, _formatter, _logger in (("cloudwatch", "json", None), ("cloudwatch_emf", "emf", "wecare.metrics.emf")):
        LOGGING["handlers"][_name] = {
            "class": "watchtower.CloudWatchLogHandler",
            "log_group_name": LOG_GROUP_NAME,
            "formatter": _formatter,
            "create_log_group": False,
            **({"filters": _log_filters} if _logger is None else {}),
        }
    LOGGING["root"]["handlers"].append("cloudwatch")
    LOGGING["loggers"]["wecare.metrics.emf"]["handlers"].append("cloudwatch_emf")
