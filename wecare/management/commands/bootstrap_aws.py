"""Create the AWS resources the platform uses, on the local emulator (or check them in the cloud).

Idempotent: safe to run at every start. Production resources are made by infrastructure code,
so outside local/test/preview this only reports what is missing.
"""

from __future__ import annotations

import contextlib
import secrets

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wecare import aws, dynamo

LOCAL_ENVIRONMENTS = ("local", "test", "preview")


def queue_names() -> list[str]:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    names = [
        settings.QUEUE_DEFAULT,
        settings.QUEUE_OUTBOUND,
        settings.QUEUE_INBOUND,
        settings.QUEUE_BULK,
        settings.QUEUE_INBOUND_DLQ,
        settings.QUEUE_OUTBOUND_DLQ,
        settings.QUEUE_BULK_DLQ,
    ]
    return [prefix + name for name in names]


def local_secrets() -> dict[str, str]:
    return {
        settings.SECRET_NAME_WHATSAPP_ACCESS_TOKEN: "local-whatsapp-token-" + secrets.token_hex(8),
        settings.SECRET_NAME_META_APP_SECRET: "local-meta-app-secret-" + secrets.token_hex(8),
        settings.SECRET_NAME_OIDC_CLIENT_SECRET: "local-oidc-client-secret-" + secrets.token_hex(8),
    }


def ensure_queues() -> list[str]:
    sqs = aws.client("sqs")
    for name in queue_names():
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "600"})
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
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
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


def ensure_messaging_identities() -> None:
    aws.client("sesv2").create_email_identity(EmailIdentity=settings.SES_SENDER_EMAIL)
    topic_name = settings.SNS_TOPIC_ARN.rsplit(":", 1)[-1]
    aws.client("sns").create_topic(Name=topic_name)
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=settings.LOG_GROUP_NAME)


class Command(BaseCommand):
    help = "Create the queues, buckets, DynamoDB tables, secrets and identities the platform uses."

    def handle(self, *args, **options):
        if settings.ENVIRONMENT not in LOCAL_ENVIRONMENTS:
            raise CommandError(
                f"bootstrap_aws creates resources only in {', '.join(LOCAL_ENVIRONMENTS)}; "
                f"ENVIRONMENT={settings.ENVIRONMENT} uses infrastructure code."
            )
        self.stdout.write(f"queues: {', '.join(ensure_queues())}")
        self.stdout.write(f"buckets: {', '.join(ensure_buckets())}")
        self.stdout.write(f"tables: {', '.join(ensure_tables()) or '(none registered)'}")
        self.stdout.write(f"secrets: {', '.join(ensure_secrets())}")
        ensure_messaging_identities()
        self.stdout.write(self.style.SUCCESS("AWS resources ready."))
