"""The AWS resources the platform uses: create them on the local emulator, or check them anywhere.

- ``bootstrap_aws`` (local, test): creates the queues with their dead-letter queues, the buckets, the
  DynamoDB tables with their TTL, the secrets and identities, as deploy/data.yaml does in the cloud.
  Idempotent: safe to run at every start. Deployed environments are made by deploy/*.yaml only.
- ``bootstrap_aws --check`` (every environment, read-only): verifies that every resource the settings
  name exists and is set up as the platform needs, prints what is missing or wrong, and exits non-zero
  if anything is. Every role of the image runs it before it starts (scripts/entrypoint.sh).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wecare import aws, dynamo
from wecare.environments import DEPLOYED_ENVIRONMENTS

LOCAL_ENVIRONMENTS = ("local", "test")
# A message received this many times without success goes to its dead-letter queue (deploy/data.yaml too).
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 7 * 24 * 3600
BULK_RETENTION_SECONDS = 24 * 3600
PUBLIC_ACCESS_BLOCK = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True)
class Queue:
    name: str  # without the environment's prefix, as in settings
    dlq: str | None = None  # the dead-letter queue its messages are redriven to
    retention_seconds: int | None = None  # None: SQS's default (4 days) is fine


def _prefixed(name: str) -> str:
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "") + name


def platform_queues() -> list[Queue]:
    """Work queues with their DLQ, then the DLQs. The default queue (maintenance) has no DLQ."""
    return [
        Queue(settings.QUEUE_DEFAULT),
        Queue(settings.QUEUE_AI),  # AI suggestions: a lost one is only a missing draft, never a lost message
        Queue(settings.QUEUE_OUTBOUND, dlq=settings.QUEUE_OUTBOUND_DLQ),
        Queue(settings.QUEUE_INBOUND, dlq=settings.QUEUE_INBOUND_DLQ),
        Queue(settings.QUEUE_BULK, dlq=settings.QUEUE_BULK_DLQ, retention_seconds=BULK_RETENTION_SECONDS),
        Queue(settings.QUEUE_INBOUND_DLQ, retention_seconds=DLQ_RETENTION_SECONDS),
        Queue(settings.QUEUE_OUTBOUND_DLQ, retention_seconds=DLQ_RETENTION_SECONDS),
        Queue(settings.QUEUE_BULK_DLQ, retention_seconds=DLQ_RETENTION_SECONDS),
    ]


def queue_names() -> list[str]:
    return [_prefixed(queue.name) for queue in platform_queues()]


def required_secrets() -> list[tuple[str, str]]:
    """(setting, secret name) of every secret the settings name for this environment."""
    names = [
        ("SECRET_NAME_WHATSAPP_ACCESS_TOKEN", settings.SECRET_NAME_WHATSAPP_ACCESS_TOKEN),
        ("SECRET_NAME_META_APP_SECRET", settings.SECRET_NAME_META_APP_SECRET),
        ("SECRET_NAME_OIDC_CLIENT_SECRET", settings.SECRET_NAME_OIDC_CLIENT_SECRET),
    ]
    if settings.ENVIRONMENT in DEPLOYED_ENVIRONMENTS and not settings.DJANGO_SECRET_KEY_FILE:
        names.append(("SECRET_NAME_DJANGO_SECRET_KEY", settings.SECRET_NAME_DJANGO_SECRET_KEY))
    if settings.DATABASE_SECRET_NAME:
        names.append(("DATABASE_SECRET_NAME", settings.DATABASE_SECRET_NAME))
    return names


def local_secrets() -> dict[str, str]:
    return {
        settings.SECRET_NAME_WHATSAPP_ACCESS_TOKEN: "local-whatsapp-token-" + secrets.token_hex(8),
        settings.SECRET_NAME_META_APP_SECRET: "local-meta-app-secret-" + secrets.token_hex(8),
        settings.SECRET_NAME_OIDC_CLIENT_SECRET: "local-oidc-client-secret-" + secrets.token_hex(8),
    }


# --- create (local and test only) --------------------------------------------------------------


def ensure_queues() -> list[str]:
    sqs = aws.client("sqs")
    visibility = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    queues = platform_queues()
    # Dead-letter queues first: a redrive policy names the ARN of an existing queue.
    for queue in sorted(queues, key=lambda q: q.dlq is not None):
        attributes = {"VisibilityTimeout": visibility, "SqsManagedSseEnabled": "true"}
        if queue.retention_seconds:
            attributes["MessageRetentionPeriod"] = str(queue.retention_seconds)
        if queue.dlq:
            dlq_url = sqs.get_queue_url(QueueName=_prefixed(queue.dlq))["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            )
        url = sqs.create_queue(QueueName=_prefixed(queue.name))["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return queue_names()


def ensure_buckets() -> list[str]:
    s3 = aws.client("s3")
    buckets = list(dict.fromkeys([settings.MEDIA_BUCKET, settings.REPORT_BUCKET, settings.ARCHIVE_BUCKET]))
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCK, True),
        )
    return buckets


def ensure_tables() -> list[str]:
    ddb = aws.client("dynamodb")
    names = []
    for model in dynamo.registered_models():
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        ttl_attr = getattr(model.Meta, "ttl_attribute", None)
        if ttl_attr:
            ddb.update_time_to_live(
                TableName=model.Meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attr},
            )
        names.append(model.Meta.table_name)
    return names


def ensure_secrets() -> list[str]:
    sm = aws.client("secretsmanager")
    for name, value in local_secrets().items():
        try:
            sm.describe_secret(SecretId=name)
        except ClientError:
            sm.create_secret(Name=name, SecretString=value)
    return list(local_secrets())


# The SES events the platform acts on (messaging.feedback.ses), in the SES v1 API's names.
SES_EVENT_TYPES = ["send", "reject", "bounce", "complaint", "delivery"]


def ensure_ses_configuration_set() -> None:
    """SES_CONFIGURATION_SET with an SNS event destination on SNS_TOPIC_ARN (deploy/compute.yaml in AWS).

    The set is made with SES v2; its event destination with the SES v1 API (configuration sets are one
    resource to both), because moto implements event destinations only there.
    """
    name = settings.SES_CONFIGURATION_SET
    if not name:
        return
    sesv2 = aws.client("sesv2")
    try:
        sesv2.get_configuration_set(ConfigurationSetName=name)
    except sesv2.exceptions.NotFoundException:
        sesv2.create_configuration_set(ConfigurationSetName=name)
    ses = aws.client("ses")
    described = ses.describe_configuration_set(
        ConfigurationSetName=name, ConfigurationSetAttributeNames=["eventDestinations"]
    )
    if not any(d.get("Name") == "sns" for d in described.get("EventDestinations", [])):
        ses.create_configuration_set_event_destination(
            ConfigurationSetName=name,
            EventDestination={
                "Name": "sns",
                "Enabled": True,
                "MatchingEventTypes": SES_EVENT_TYPES,
                "SNSDestination": {"TopicARN": settings.SNS_TOPIC_ARN},
            },
        )


def ensure_messaging_identities() -> None:
    aws.client("sesv2").create_email_identity(EmailIdentity=settings.SES_SENDER_EMAIL)
    topic_name = settings.SNS_TOPIC_ARN.rsplit(":", 1)[-1]
    aws.client("sns").create_topic(Name=topic_name)
    ensure_ses_configuration_set()
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=settings.LOG_GROUP_NAME)


# --- check (every environment; read-only: Get/Describe/List/Head calls only) -------------------


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "error")
    return type(exc).__name__


def check_queues() -> list[str]:
    sqs = aws.client("sqs")
    visibility = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    problems = []
    arns: dict[str, str] = {}
    found: dict[str, dict[str, str]] = {}
    for queue in platform_queues():
        name = _prefixed(queue.name)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            found[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            arns[queue.name] = found[queue.name]["QueueArn"]
        except ClientError as exc:
            problems.append(f"queue {name}: missing ({_error_code(exc)})")
    for queue in platform_queues():
        name = _prefixed(queue.name)
        attributes = found.get(queue.name)
        if attributes is None:
            continue
        if attributes.get("VisibilityTimeout") != visibility:
            problems.append(
                f"queue {name}: visibility timeout is {attributes.get('VisibilityTimeout')} s, "
                f"the platform needs {visibility} s"
            )
        if attributes.get("SqsManagedSseEnabled") != "true" and not attributes.get("KmsMasterKeyId"):
            problems.append(f"queue {name}: not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)")
        if queue.retention_seconds and attributes.get("MessageRetentionPeriod") != str(queue.retention_seconds):
            problems.append(
                f"queue {name}: retention is {attributes.get('MessageRetentionPeriod')} s, "
                f"the platform needs {queue.retention_seconds} s"
            )
        if queue.dlq:
            problems += _redrive_problems(
                name, attributes.get("RedrivePolicy"), _prefixed(queue.dlq), arns.get(queue.dlq)
            )
    return problems


def _redrive_problems(name: str, raw_policy: str | None, dlq_name: str, dlq_arn: str | None) -> list[str]:
    if not raw_policy:
        return [f"queue {name}: no redrive policy (its dead letters must go to {dlq_name})"]
    try:
        policy = json.loads(raw_policy)
        target, max_receive = policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])
    except (ValueError, KeyError, TypeError):
        return [f"queue {name}: redrive policy is malformed"]
    problems = []
    if dlq_arn is None or target != dlq_arn:
        problems.append(f"queue {name}: redrive goes to {target.rsplit(':', 1)[-1]}, not to {dlq_name}")
    if max_receive < 1:
        problems.append(f"queue {name}: redrive maxReceiveCount must be at least 1")
    return problems


def check_tables() -> list[str]:
    ddb = aws.client("dynamodb")
    problems = []
    for model in dynamo.registered_models():
        name = model.Meta.table_name
        try:
            table = ddb.describe_table(TableName=name)["Table"]
        except ClientError as exc:
            problems.append(f"table {name}: missing ({_error_code(exc)})")
            continue
        key_attributes = [a for a in model.get_attributes().values() if a.is_hash_key or a.is_range_key]
        wanted_keys = {a.attr_name: "HASH" if a.is_hash_key else "RANGE" for a in key_attributes}
        keys = {key["AttributeName"]: key["KeyType"] for key in table["KeySchema"]}
        if keys != wanted_keys:
            problems.append(f"table {name}: key schema is {keys}, the platform needs {wanted_keys}")
        ttl_attr = getattr(model.Meta, "ttl_attribute", None)
        if ttl_attr:
            ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != ttl_attr:
                problems.append(
                    f"table {name}: TTL is {ttl.get('TimeToLiveStatus', 'DISABLED')} "
                    f"on {ttl.get('AttributeName') or '(no attribute)'}, the platform needs it ENABLED on {ttl_attr}"
                )
    return problems


def check_buckets() -> list[str]:
    s3 = aws.client("s3")
    problems = []
    for setting in ("MEDIA_BUCKET", "REPORT_BUCKET"):
        bucket = getattr(settings, setting)
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            problems.append(f"bucket {bucket} ({setting}): not reachable ({_error_code(exc)})")
            continue
        try:
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError:
            block = {}
        open_flags = [flag for flag in PUBLIC_ACCESS_BLOCK if not block.get(flag)]
        if open_flags:
            problems.append(
                f"bucket {bucket} ({setting}): not private (public access block off: {', '.join(open_flags)})"
            )
    return problems


def check_secrets() -> list[str]:
    sm = aws.client("secretsmanager")
    problems = []
    for setting, name in required_secrets():
        try:
            described = sm.describe_secret(SecretId=name)  # metadata only: the value is never read here
        except ClientError as exc:
            problems.append(f"secret {name} ({setting}): missing ({_error_code(exc)})")
            continue
        if described.get("DeletedDate"):
            problems.append(f"secret {name} ({setting}): scheduled for deletion")
    return problems


def check_topic() -> list[str]:
    sns = aws.client("sns")
    topic = settings.SNS_TOPIC_ARN
    try:
        sns.get_topic_attributes(TopicArn=topic)
    except ClientError as exc:
        return [f"topic {topic}: missing ({_error_code(exc)})"]
    endpoint = settings.SNS_WEBHOOK_URL
    if not endpoint:
        if settings.ENVIRONMENT in DEPLOYED_ENVIRONMENTS:
            return [f"topic {topic}: SNS_WEBHOOK_URL is not set, so its HTTPS subscription cannot be checked"]
        return []
    subscriptions = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        subscriptions += [s for s in page["Subscriptions"] if s["Endpoint"] == endpoint]
    if not subscriptions:
        return [f"topic {topic}: no subscription of {endpoint}"]
    arn = subscriptions[0]["SubscriptionArn"]
    if subscriptions[0]["Protocol"] != "https":
        return [f"topic {topic}: {endpoint} is subscribed over {subscriptions[0]['Protocol']}, not https"]
    if not arn.startswith("arn:"):  # "PendingConfirmation"
        return [f"topic {topic}: the subscription of {endpoint} is not confirmed"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    if str(attributes.get("PendingConfirmation", "false")).lower() == "true":
        return [f"topic {topic}: the subscription of {endpoint} is not confirmed"]
    if str(attributes.get("RawMessageDelivery", "false")).lower() == "true":
        return [f"topic {topic}: the subscription of {endpoint} has raw message delivery on (signatures need it off)"]
    return []


def check_identities() -> list[str]:
    problems = []
    try:
        aws.client("sesv2").get_email_identity(EmailIdentity=settings.SES_SENDER_EMAIL)
    except ClientError as exc:
        problems.append(f"SES identity {settings.SES_SENDER_EMAIL}: missing ({_error_code(exc)})")
    # Deployed containers log to it through the awslogs driver even when the app's own handler is off.
    if settings.CLOUDWATCH_LOGS_ENABLED or settings.ENVIRONMENT in DEPLOYED_ENVIRONMENTS:
        groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=settings.LOG_GROUP_NAME)["logGroups"]
        if not any(group["logGroupName"] == settings.LOG_GROUP_NAME for group in groups):
            problems.append(f"log group {settings.LOG_GROUP_NAME}: missing")
    return problems


CHECKS: list[Callable[[], list[str]]] = [
    check_queues,
    check_tables,
    check_buckets,
    check_secrets,
    check_topic,
    check_identities,
]


def check_world() -> list[str]:
    """Every problem found, one line each, naming the resource. Empty when all is as the platform needs."""
    problems = []
    for check in CHECKS:
        try:
            problems += check()
        except (BotoCoreError, ClientError) as exc:
            problems.append(
                f"{check.__name__.removeprefix('check_')}: could not be checked ({_error_code(exc)}: {exc})"
            )
    return problems


class Command(BaseCommand):
    help = (
        "Create the queues, buckets, DynamoDB tables, secrets and identities the platform uses (local, test); "
        "--check verifies them anywhere, read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="read-only: verify every resource the settings name; exit 1 listing what is missing or wrong",
        )

    def handle(self, *args, **options):
        if options["check"]:
            return self.check_resources()
        if settings.ENVIRONMENT not in LOCAL_ENVIRONMENTS:
            raise CommandError(
                f"bootstrap_aws creates resources only in {', '.join(LOCAL_ENVIRONMENTS)}; "
                f"ENVIRONMENT={settings.ENVIRONMENT} is made by deploy/*.yaml: use `bootstrap_aws --check`."
            )
        self.stdout.write(f"queues: {', '.join(ensure_queues())}")
        self.stdout.write(f"buckets: {', '.join(ensure_buckets())}")
        self.stdout.write(f"tables: {', '.join(ensure_tables()) or '(none registered)'}")
        self.stdout.write(f"secrets: {', '.join(ensure_secrets())}")
        ensure_messaging_identities()
        self.stdout.write(self.style.SUCCESS("AWS resources ready."))

    def check_resources(self):
        problems = check_world()
        if problems:
            for problem in problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(
                f"{len(problems)} AWS resource problem(s) in ENVIRONMENT={settings.ENVIRONMENT}: see the list above."
            )
        self.stdout.write(self.style.SUCCESS(f"AWS resources of ENVIRONMENT={settings.ENVIRONMENT} are as needed."))
