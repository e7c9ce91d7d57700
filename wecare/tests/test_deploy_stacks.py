"""deploy/data.yaml and deploy/compute.yaml, deployed on the emulator's CloudFormation for each environment.

The platform's start-up check (`bootstrap_aws --check`) then runs in a fresh process with exactly the
environment the compute stack gives its containers (read back from the deployed task definition), against
that deployment. The account's existing resources (topic, buckets, app secrets, SES identity, certificate,
network) are made first: the stacks reuse them and never create them.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from cfnlint.decode import cfn_yaml
from django.core.management import call_command

from deploy.deploy import Network, deploy, plan_for
from wecare import aws

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENVIRONMENTS = ("production", "staging", "preview")
TOPIC_ARN = "arn:aws:sns:us-east-1:809904170947:base-wecare-digital"
PLATFORM_ROLE = "arn:aws:iam::809904170947:role/base-wecare-digital"
IMAGE = "809904170947.dkr.ecr.us-east-1.amazonaws.com/base-wecare-digital:test"
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")  # fmt: skip
# The metric names of wecare/metrics.py (AREAS.md): the alarms may use no other.
PLATFORM_METRICS = {
    "MessagesSent", "MessagesDelivered", "MessagesRead", "MessagesFailed", "MessagesRefused", "ProviderLatency",
    "InboundEventsProcessed", "InboundEventsFailed", "BulkJobDuration", "BulkJobThroughput", "BulkRecipientsSent",
    "BulkRecipientsFailed", "QueueDepth", "QueueOldestAge", "TierUsePercent", "RateLimitWaits", "ApiRequests",
    "Api5xx", "WorkerErrors", "AISuggestions",
}  # fmt: skip


def _client(service: str):
    return boto3.client(service, region_name="us-east-1")


def _reset_emulator(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    aws.reset_clients()


@pytest.fixture(scope="module")
def world(aws_endpoint):
    """The account as the stacks find it: what they reuse exists; nothing of theirs does yet."""
    _reset_emulator(aws_endpoint)
    _client("sns").create_topic(Name=TOPIC_ARN.rsplit(":", 1)[-1])
    s3 = _client("s3")
    for bucket in ("auth.wecare.digital", "stream.wecare.digital"):
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
    sm = _client("secretsmanager")
    for name in ("wecare/whatsapp-access-token", "wecare/meta-app-secret", "wecare/oidc-client-secret"):
        sm.create_secret(Name=name, SecretString="value-entered-by-an-admin")
    _client("sesv2").create_email_identity(EmailIdentity="one@wecare.digital")
    certificate = _client("acm").request_certificate(DomainName="base.wecare.digital")["CertificateArn"]
    ec2 = _client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as Fargate tasks need
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{'ab'[i % 2]}")["Subnet"][
            "SubnetId"
        ]
        for i in range(4)
    ]
    yield {"certificate": certificate, "vpc": vpc, "private": subnets[:2], "public": subnets[2:]}
    # Later tests find the emulator as the session left it: the platform's own local resources.
    _reset_emulator(aws_endpoint)
    call_command("bootstrap_aws", stdout=io.StringIO())


@pytest.fixture(scope="module")
def deployments(world):
    """Every environment, deployed by the deploy command (deploy/deploy.py) from one branch of each kind."""
    network = Network(vpc_id=world["vpc"], public_subnets=world["public"], private_subnets=world["private"])
    session = boto3.session.Session(region_name="us-east-1")
    result = {}
    for branch in ("main", "release/2026.12", "feature/new-inbox"):
        plan = plan_for(branch)
        outputs = deploy(
            plan,
            image=IMAGE,
            network=network,
            session=session,
            extra_parameters={"CertificateArn": world["certificate"], "OidcClientId": "app-client"},
            poll_seconds=1,
            log=lambda line: None,
        )
        result[plan.environment] = outputs
    return result


def container_environment(compute_outputs: dict[str, str]) -> dict[str, str]:
    task = _client("ecs").describe_task_definition(taskDefinition=compute_outputs["MigrateTaskDefinitionArn"])
    return {item["name"]: item["value"] for item in task["taskDefinition"]["containerDefinitions"][0]["environment"]}


def run_check(environment: dict[str, str]) -> subprocess.CompletedProcess:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(environment, DJANGO_SETTINGS_MODULE="wecare.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "bootstrap_aws", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_start_up_check_passes_against_the_deployed_stacks_of_each_environment(deployments, environment):
    result = run_check(container_environment(deployments[environment]["compute"]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"AWS resources of ENVIRONMENT={environment} are as needed." in result.stdout


def test_each_environment_has_its_own_queues_tables_and_django_key(deployments):
    queues = _client("sqs").list_queues()["QueueUrls"]
    tables = _client("dynamodb").list_tables()["TableNames"]

    assert any(url.endswith("/base-wecare-digital-outbound-queue") for url in queues)  # production: the seeds' names
    for environment in ("staging", "preview"):
        assert any(url.endswith(f"/base-wecare-digital-{environment}-outbound-queue") for url in queues)
        assert f"base-wecare-digital-{environment}-rate-limits" in tables
    secrets = {s["Name"] for s in _client("secretsmanager").list_secrets()["SecretList"]}
    assert {f"base-wecare-digital/{e}/django-secret-key" for e in ENVIRONMENTS} <= secrets


def test_a_queue_without_its_redrive_policy_fails_the_check_naming_the_queue(deployments):
    sqs = _client("sqs")
    url = sqs.get_queue_url(QueueName="base-wecare-digital-staging-outbound-queue")["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    try:
        result = run_check(container_environment(deployments["staging"]["compute"]))
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})

    assert result.returncode != 0
    assert (
        "queue base-wecare-digital-staging-outbound-queue: no redrive policy "
        "(its dead letters must go to base-wecare-digital-staging-outbound-dlq)"
    ) in result.stderr
    assert "1 AWS resource problem(s) in ENVIRONMENT=staging" in result.stderr


def test_a_table_without_its_ttl_fails_the_check_naming_the_table(deployments):
    ddb = _client("dynamodb")
    table = "base-wecare-digital-rate-limits"  # production keeps the seeds' names
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"})
    try:
        result = run_check(container_environment(deployments["production"]["compute"]))
    finally:
        ddb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )

    assert result.returncode != 0
    assert f"table {table}: TTL is DISABLED" in result.stderr
    assert "the platform needs it ENABLED on expires_at" in result.stderr


def test_a_subscription_with_raw_delivery_fails_the_check(deployments):
    arn = deployments["preview"]["compute"]["WebhookSubscriptionArn"]
    sns = _client("sns")
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true")
    try:
        result = run_check(container_environment(deployments["preview"]["compute"]))
    finally:
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="false")

    assert result.returncode != 0
    assert (
        "the subscription of https://preview.base.wecare.digital/webhooks/sns/ has raw message delivery on"
        in result.stderr
    )


def test_a_public_bucket_and_a_missing_secret_fail_the_check_together(deployments):
    s3, sm = _client("s3"), _client("secretsmanager")
    s3.delete_public_access_block(Bucket="stream.wecare.digital")
    sm.delete_secret(SecretId="wecare/meta-app-secret", ForceDeleteWithoutRecovery=True)
    try:
        result = run_check(container_environment(deployments["staging"]["compute"]))
    finally:
        s3.put_public_access_block(
            Bucket="stream.wecare.digital",
            PublicAccessBlockConfiguration=dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
            ),
        )
        sm.create_secret(Name="wecare/meta-app-secret", SecretString="value-entered-by-an-admin")

    assert result.returncode != 0
    assert "bucket stream.wecare.digital (REPORT_BUCKET): not private" in result.stderr
    assert "secret wecare/meta-app-secret (SECRET_NAME_META_APP_SECRET): missing" in result.stderr
    assert "2 AWS resource problem(s) in ENVIRONMENT=staging" in result.stderr


def test_the_deployed_queues_tables_and_database_are_set_up_as_the_seeds_ask(deployments):
    sqs = _client("sqs")

    def attributes(name):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert attributes("base-wecare-digital-bulk-queue")["MessageRetentionPeriod"] == "86400"
    for dlq in ("inbound-dlq", "outbound-dlq", "bulk-dlq"):
        assert attributes(f"base-wecare-digital-{dlq}")["MessageRetentionPeriod"] == "604800"
        assert attributes(f"base-wecare-digital-{dlq}")["VisibilityTimeout"] == "300"
    ddb = _client("dynamodb")
    for table in ("tier-counters", "tier-conversations", "rate-limits", "inbound-claims"):
        name = f"base-wecare-digital-{table}"
        assert ddb.describe_table(TableName=name)["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    rds = _client("rds")
    production = rds.describe_db_instances(DBInstanceIdentifier="base-wecare-digital-postgres")["DBInstances"][0]
    staging = rds.describe_db_instances(DBInstanceIdentifier="base-wecare-digital-staging-postgres")["DBInstances"][0]
    assert (production["BackupRetentionPeriod"], production["MultiAZ"], production["StorageEncrypted"]) == (
        30,
        True,
        True,
    )
    assert (staging["BackupRetentionPeriod"], staging["MultiAZ"]) == (7, False)
    assert production["MasterUserSecret"]["SecretArn"] == deployments["production"]["data"]["DatabaseSecretArn"]
    groups = _client("logs").describe_log_groups(logGroupNamePrefix="/base-wecare-digital/common")["logGroups"]
    assert groups[0]["retentionInDays"] >= 30


def test_every_task_runs_as_the_platform_role_beat_runs_exactly_once_and_one_relay_runs(deployments):
    ecs = _client("ecs")
    cluster = deployments["production"]["compute"]["ClusterName"]
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    services = {s["serviceName"]: s for s in ecs.describe_services(cluster=cluster, services=arns)["services"]}

    by_family = {}
    for service in services.values():
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        assert (task["taskRoleArn"], task["executionRoleArn"]) == (PLATFORM_ROLE, PLATFORM_ROLE)
        # No secret value in a container's environment: names and ARNs only.
        environment = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
        assert not {"DJANGO_SECRET_KEY", "DATABASE_PASSWORD"} & environment.keys()
        assert "@" not in environment["DATABASE_URL"]
        role = task["family"].removeprefix("base-wecare-digital-production-")
        assert task["containerDefinitions"][0]["command"] == [role]  # the entrypoint's role
        by_family[role] = service

    assert set(by_family) == {"web", "worker", "bulk-worker", "beat", "relay"}
    assert by_family["beat"]["desiredCount"] == 1
    assert by_family["relay"]["desiredCount"] == 1  # the inbound outbox relay loop
    # Never two beats, even during a deployment (moto keeps no deployment configuration: read the template).
    beat = cfn_yaml.loads((DEPLOY / "compute.yaml").read_text())["Resources"]["BeatService"]["Properties"]
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert beat["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert 2 <= by_family["bulk-worker"]["desiredCount"] <= 5
    relay = cfn_yaml.loads((DEPLOY / "compute.yaml").read_text())["Resources"]["RelayTaskDefinition"]["Properties"]
    assert relay["ContainerDefinitions"][0]["HealthCheck"]["Command"][-2:] == ["health", "relay"]
    web = cfn_yaml.loads((DEPLOY / "compute.yaml").read_text())["Resources"]["WebService"]["Properties"]
    assert web["LoadBalancers"][0]["ContainerPort"] == 8000


def test_the_stacks_create_no_iam_role_bucket_topic_or_user_pool():
    text = (DEPLOY / "data.yaml").read_text() + (DEPLOY / "compute.yaml").read_text()
    types = set(re.findall(r"Type: (AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)", text))

    assert not {t for t in types if t.startswith(("AWS::IAM::", "AWS::S3::", "AWS::Cognito::"))}
    assert "AWS::SNS::Topic" not in types


def test_the_alarms_watch_the_platform_metrics_and_notify_the_topic(deployments):
    alarms = _client("cloudwatch").describe_alarms(AlarmNamePrefix="wecare-production-")["MetricAlarms"]

    assert {a["AlarmName"] for a in alarms} == {
        "wecare-production-message-error-rate",
        "wecare-production-dlq-depth",
        "wecare-production-whatsapp-tier-use",
        "wecare-production-api-error-rate",
        "wecare-production-bulk-failure-rate",
    }
    thresholds = {a["AlarmName"].removeprefix("wecare-production-"): a["Threshold"] for a in alarms}
    assert thresholds == {
        "message-error-rate": 5,
        "dlq-depth": 10,
        "whatsapp-tier-use": 80,
        "api-error-rate": 5,
        "bulk-failure-rate": 10,
    }
    for alarm in alarms:
        assert alarm["AlarmActions"] == [TOPIC_ARN]
        for query in alarm["Metrics"]:
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                assert metric["Namespace"] == "WECARE.DIGITAL"
                assert metric["MetricName"] in PLATFORM_METRICS
                assert {"Name": "Environment", "Value": "production"} in metric["Dimensions"]
    text = (DEPLOY / "data.yaml").read_text()
    assert set(re.findall(r"MetricName: (\w+)", text)) <= PLATFORM_METRICS
    assert 'MAX(TierUsePercent) FROM SCHEMA(\\"WECARE.DIGITAL\\", Environment, PhoneNumberId)' in text


def _service_image(cluster: str, family: str) -> str:
    ecs = _client("ecs")
    services = ecs.describe_services(cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"])
    for service in services["services"]:
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        if task["family"] == family:
            return task["containerDefinitions"][0]["image"]
    raise AssertionError(f"no service of {family}")


def test_an_upgrade_migrates_with_the_new_image_before_any_service_runs_it(deployments, world):
    new_image = IMAGE.replace(":test", ":next")
    cluster = deployments["staging"]["compute"]["ClusterName"]
    seen = {}

    def log(line: str) -> None:
        if line == "migrate":  # the migrate task is about to run
            seen["web"] = _service_image(cluster, "base-wecare-digital-staging-web")
            task = _client("ecs").describe_task_definition(taskDefinition="base-wecare-digital-staging-migrate")
            seen["migrate"] = task["taskDefinition"]["containerDefinitions"][0]["image"]

    deploy(
        plan_for("release/2026.12"),
        image=new_image,
        network=Network(vpc_id=world["vpc"], public_subnets=world["public"], private_subnets=world["private"]),
        session=boto3.session.Session(region_name="us-east-1"),
        extra_parameters={"CertificateArn": world["certificate"], "OidcClientId": "app-client"},
        poll_seconds=1,
        log=log,
    )

    assert seen == {"web": IMAGE, "migrate": new_image}
    assert _service_image(cluster, "base-wecare-digital-staging-web") == new_image
    assert _service_image(cluster, "base-wecare-digital-staging-beat") == new_image
