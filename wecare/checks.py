"""Django system checks (wecare.E001…) for settings whose shape is right but whose value can be wrong.

settings.py already refuses a missing or malformed variable at import time (not a number, not a
choice); these catch values that parse but cannot work, e.g. a WhatsApp allowlist entry that is a
phone number rather than an AWS phone-number id. `manage.py check`, runserver, migrate and the
Celery worker run them.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, register, run_checks
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

WHATSAPP_PHONE_NUMBER_ID = re.compile(r"^phone-number-id-[0-9a-f]{32}$")
SNS_TOPIC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
SMS_POOL = re.compile(
    r"^(pool-[0-9a-f]{32}|arn:aws(-[a-z]+)*:sms-voice:[a-z]{2}(-[a-z]+)+-\d:\d{12}:pool/pool-[0-9a-f]{32})$"
)
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# S3 bucket naming rules: 3-63 characters, lower case, digits, dots and hyphens, letter or digit at both ends.
S3_BUCKET = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@register("wecare")
def check_whatsapp_phone_number_ids(app_configs=None, **kwargs) -> list[Error]:
    ids = settings.WHATSAPP_PHONE_NUMBER_IDS
    if not ids:
        return [
            Error(
                "WHATSAPP_PHONE_NUMBER_IDS is empty.",
                hint="List the allowed origination phone-number ids, comma-separated.",
                id="wecare.E001",
            )
        ]
    bad = [value for value in ids if not WHATSAPP_PHONE_NUMBER_ID.match(value)]
    if bad:
        return [
            Error(
                f"WHATSAPP_PHONE_NUMBER_IDS has entries that are not phone-number ids: {', '.join(bad)}.",
                hint="Each entry looks like phone-number-id-<32 hex digits> (AWS End User Messaging Social).",
                id="wecare.E001",
            )
        ]
    return []


@register("wecare")
def check_ses_sender(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    try:
        validate_email(settings.SES_SENDER_EMAIL)
    except ValidationError:
        errors.append(
            Error(
                f"SES_SENDER_EMAIL={settings.SES_SENDER_EMAIL!r} is not an email address.",
                hint="Set it to a verified SES identity, e.g. one@wecare.digital.",
                id="wecare.E002",
            )
        )
    # The display name goes into the From header: a line break there would inject headers.
    if any(ch in settings.SES_SENDER_NAME for ch in '\r\n<>"'):
        errors.append(
            Error(
                f"SES_SENDER_NAME={settings.SES_SENDER_NAME!r} contains a line break, <, > or a double quote.",
                hint="Use a plain display name, e.g. WECARE.DIGITAL.",
                id="wecare.E002",
            )
        )
    return errors


@register("wecare")
def check_sns_topic_arn(app_configs=None, **kwargs) -> list[Error]:
    if SNS_TOPIC_ARN.match(settings.SNS_TOPIC_ARN):
        return []
    return [
        Error(
            f"SNS_TOPIC_ARN={settings.SNS_TOPIC_ARN!r} is not an SNS topic ARN.",
            hint="It looks like arn:aws:sns:us-east-1:123456789012:topic-name.",
            id="wecare.E003",
        )
    ]


@register("wecare")
def check_sms_pool(app_configs=None, **kwargs) -> list[Error]:
    if SMS_POOL.match(settings.SMS_POOL_ID):
        return []
    return [
        Error(
            f"SMS_POOL_ID={settings.SMS_POOL_ID!r} is neither a pool id nor a pool ARN.",
            hint="Use pool-<32 hex digits> or arn:aws:sms-voice:<region>:<account>:pool/pool-<32 hex digits>.",
            id="wecare.E004",
        )
    ]


@register("wecare")
def check_buckets_and_prefixes(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name in ("MEDIA_BUCKET", "REPORT_BUCKET"):
        value = getattr(settings, name)
        if not S3_BUCKET.match(value):
            errors.append(
                Error(
                    f"{name}={value!r} is not a valid S3 bucket name.",
                    hint="3-63 characters: lower-case letters, digits, dots and hyphens.",
                    id="wecare.E005",
                )
            )
    for name in ("MEDIA_INCOMING_PREFIX", "MEDIA_OUTGOING_PREFIX", "REPORT_PREFIX"):
        value = getattr(settings, name)
        # "a/b" + "file" would give "a/bfile", and a leading slash makes an empty top-level folder.
        if value and (not value.endswith("/") or value.startswith("/")):
            errors.append(
                Error(
                    f"{name}={value!r} must end with '/' and must not start with '/' (or be empty).",
                    hint="e.g. whatsapp-media/whatsapp-media-incoming/",
                    id="wecare.E006",
                )
            )
    return errors


@register("wecare")
def check_aws_region(app_configs=None, **kwargs) -> list[Error]:
    if AWS_REGION.match(settings.AWS_REGION):
        return []
    return [
        Error(
            f"AWS_REGION={settings.AWS_REGION!r} is not an AWS region name.",
            hint="e.g. us-east-1.",
            id="wecare.E007",
        )
    ]


@register("wecare")
def check_production_database(app_configs=None, **kwargs) -> list[Error]:
    engine = settings.DATABASES["default"]["ENGINE"]
    if settings.ENVIRONMENT != "production" or engine in ("django.db.backends.postgresql", "wecare.db.postgresql"):
        return []
    return [
        Error(
            f"Production runs on PostgreSQL; DATABASE_URL selects {engine}.",
            hint="Set DATABASE_URL to a postgres:// URL.",
            id="wecare.E008",
        )
    ]


@register("wecare")
def check_live_aws_account(app_configs=None, **kwargs) -> list[Error]:
    """SEND_MODE=LIVE only with credentials of AWS_ACCOUNT_ID (one STS call per process)."""
    from wecare.aws import WrongAWSAccount, live_account_verify

    try:
        live_account_verify()
    except WrongAWSAccount as exc:
        return [Error(str(exc), hint="Use the credentials of AWS_ACCOUNT_ID, or SEND_MODE=DRY_RUN.", id="wecare.E130")]
    return []


@register("wecare", deploy=True)
def check_public_test_key(app_configs=None, **kwargs) -> list[Error]:
    if settings.SECRET_KEY != settings.TEST_ONLY_SECRET_KEY:
        return []
    return [
        Error(
            "SECRET_KEY is the built-in test key, which is public.",
            hint="Deploy with ENVIRONMENT=staging/preview/production and a secret key of its own.",
            id="wecare.E131",
        )
    ]


@register("wecare")
def check_django_secret_key(app_configs=None, **kwargs) -> list[Error]:
    """Deployed environments read the key on first use (settings import makes no network call): read it now."""
    from django.core.exceptions import ImproperlyConfigured

    from wecare.environments import DEPLOYED_ENVIRONMENTS

    if settings.ENVIRONMENT not in DEPLOYED_ENVIRONMENTS:
        return []
    try:
        str(settings.SECRET_KEY)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Create the secret (deploy/data.yaml does) or mount the file.", id="wecare.E009")]
    return []


def refuse_to_start_on_errors(**kwargs) -> None:
    """Celery worker_init/beat_init: stop like `manage.py` does when a system check fails.

    Celery's Django fixup runs the checks but ignores what they find. Celery logs and swallows
    exceptions from signal handlers, so this exits with SystemExit (non-zero, message on stderr).
    """
    serious = [message for message in run_checks() if message.is_serious() and not message.is_silenced()]
    if serious:
        lines = "\n".join(f"  {message}" for message in serious)
        raise SystemExit(f"System check identified problems; refusing to start:\n{lines}")
