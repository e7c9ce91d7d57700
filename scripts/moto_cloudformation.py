"""moto's CloudFormation, completed for what deploy/*.yaml use, so the tests deploy the real templates.

moto 5 creates most resource types of the templates but drops some properties and types silently:
- AWS::DynamoDB::Table: TimeToLiveSpecification and PointInTimeRecoverySpecification are ignored;
- AWS::RDS::DBInstance: ManageMasterUserPassword is ignored and MasterUserSecret.SecretArn unknown;
- AWS::ECS::TaskDefinition: only family, containers, volumes and memory are kept (no roles, cpu, mode);
- AWS::SNS::Subscription, AWS::SecretsManager::Secret, AWS::CloudWatch::Alarm are not created at all;
- a stack update modifies a resource only if its own parameters changed, not when a resource it refers
  to (Ref, Fn::GetAtt) is replaced: a service would keep its old task definition.
Each is applied here through moto's own backends, as CloudFormation would. Types moto lacks and the
platform's check does not need (ECS services' autoscaling) stay unsupported: moto skips them.

scripts/moto_emulator.py calls install() before it serves.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from moto.cloudformation import parsing
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.ecs.models import TaskDefinition, ecs_backends
from moto.rds.models import DBInstance, MasterUserSecret
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


# --- DynamoDB: TTL and point-in-time recovery ---------------------------------------------------
_table_create = Table.create_from_cloudformation_json.__func__


def _table_create_with_ttl(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    table = _table_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    properties = cloudformation_json["Properties"]
    backend = dynamodb_backends[account_id][region_name]
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        backend.update_time_to_live(
            table.name, {"Enabled": _bool(ttl.get("Enabled")), "AttributeName": ttl["AttributeName"]}
        )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr:
        enabled = _bool(pitr.get("PointInTimeRecoveryEnabled"))
        backend.update_continuous_backups(table.name, {"PointInTimeRecoveryEnabled": enabled})
    return table


# --- RDS: the managed master-user secret --------------------------------------------------------
_db_create = DBInstance.create_from_cloudformation_json.__func__
_db_get_attribute = DBInstance.get_cfn_attribute
_db_has_attribute = DBInstance.has_cfn_attr.__func__


def _db_create_with_managed_secret(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    database = _db_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    properties = cloudformation_json["Properties"]
    if _bool(properties.get("ManageMasterUserPassword")):
        database.manage_master_user_password = True
        kms_key_id = (properties.get("MasterUserSecret") or {}).get("KmsKeyId")
        database.master_user_secret = MasterUserSecret(database, kms_key_id)
    return database


def _db_has_attribute_with_secret(cls, attr: str) -> bool:
    return attr == "MasterUserSecret.SecretArn" or _db_has_attribute(cls, attr)


def _db_get_attribute_with_secret(self, attribute_name: str) -> Any:
    if attribute_name == "MasterUserSecret.SecretArn" and getattr(self, "master_user_secret", None):
        return self.master_user_secret.secret.arn
    return _db_get_attribute(self, attribute_name)


# --- ECS: the whole task definition (roles, CPU, network mode, compatibilities) -----------------
def _task_definition_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    p = cloudformation_json["Properties"]
    return ecs_backends[account_id][region_name].register_task_definition(
        family=p["Family"],
        container_definitions=remap_nested_keys(p.get("ContainerDefinitions", []), pascal_to_camelcase),
        volumes=remap_nested_keys(p.get("Volumes", []), pascal_to_camelcase),
        network_mode=p.get("NetworkMode"),
        requires_compatibilities=p.get("RequiresCompatibilities"),
        cpu=p.get("Cpu"),
        memory=p.get("Memory"),
        task_role_arn=p.get("TaskRoleArn"),
        execution_role_arn=p.get("ExecutionRoleArn"),
        runtime_platform=remap_nested_keys(p["RuntimePlatform"], pascal_to_camelcase)
        if p.get("RuntimePlatform")
        else None,
    )


def _task_definition_update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    """A changed task definition is a new revision (the old one is deregistered), as in CloudFormation."""
    p = cloudformation_json["Properties"]
    containers = remap_nested_keys(p.get("ContainerDefinitions", []), pascal_to_camelcase)
    if original_resource.family == p["Family"] and original_resource.container_definitions == containers:
        return original_resource
    ecs_backends[account_id][region_name].deregister_task_definition(original_resource.arn)
    return _task_definition_create(cls, new_resource_name, cloudformation_json, account_id, region_name)


# --- Stack updates: what refers to a modified resource is modified too, after it -------------------
_build_resource_diff = parsing.ResourceMap.build_resource_diff


def _referenced_resources(resource_json: Any) -> set[str]:
    found = set(parsing.get_references_from_template(resource_json))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else str(value).split(".", 1)[0])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resource_json)
    return found


def _build_resource_diff_transitively(self, other_template, parameters=None):
    actions = _build_resource_diff(self, other_template, parameters)
    new, modified = other_template["Resources"], actions["Modify"]
    changed = True
    while changed:  # dependents are appended after what they depend on: moto updates in list order
        changed = False
        for name, resource_json in new.items():
            known, pending = name in self._resource_json_map, name not in modified
            if known and pending and _referenced_resources(resource_json) & set(modified):
                modified.append(name)
                changed = True
    return actions


# --- Types moto lacks ---------------------------------------------------------------------------
class SNSSubscription(CloudFormationModel):
    __module__ = "moto.sns.cloudformation"  # moto files its models by the service in the module path

    def __init__(self, arn: str):
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
        if "RawMessageDelivery" in properties:
            raw = "true" if _bool(properties["RawMessageDelivery"]) else "false"
            backend.set_subscription_attributes(subscription.arn, "RawMessageDelivery", raw)
        return cls(subscription.arn)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        sns_backends[account_id][region_name].unsubscribe(resource_name)


class SecretsManagerSecret(CloudFormationModel):
    __module__ = "moto.secretsmanager.cloudformation"  # moto files its models by the service in the module path

    def __init__(self, arn: str, name: str):
        self.arn = arn
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        value = properties.get("SecretString")
        generate = properties.get("GenerateSecretString")
        if value is None and generate is not None:
            alphabet = string.ascii_letters + string.digits
            if not _bool(generate.get("ExcludePunctuation")):
                alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
            value = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
        created = secretsmanager_backends[account_id][region_name].create_secret(
            name=resource_name,
            secret_string=value,
            secret_binary=None,
            description=properties.get("Description"),
            tags=properties.get("Tags"),
            kms_key_id=properties.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = json.loads(created)["ARN"]  # moto returns the API answer as JSON text
        return cls(arn, resource_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        secretsmanager_backends[account_id][region_name].delete_secret(
            resource_name, recovery_window_in_days=None, force_delete_without_recovery=True
        )


def _metric_queries(metrics: list[dict]) -> list[MetricDataQuery]:
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            dimensions = [Dimension(d["Name"], d["Value"]) for d in stat["Metric"].get("Dimensions", [])]
            metric_stat = MetricStat(
                metric=Metric(stat["Metric"]["MetricName"], stat["Metric"]["Namespace"], dimensions),
                period=int(stat["Period"]),
                stat=stat["Stat"],
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=metric["Id"],
                label=metric.get("Label", ""),
                period=int(metric["Period"]) if metric.get("Period") else None,
                return_data=_bool(metric.get("ReturnData", True)),
                expression=metric.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class CloudWatchAlarm(CloudFormationModel):
    __module__ = "moto.cloudwatch.cloudformation"  # moto files its models by the service in the module path

    def __init__(self, name: str):
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=resource_name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            metric_data_queries=_metric_queries(p["Metrics"]) if p.get("Metrics") else None,
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]) if p.get("Period") else None,
            threshold=float(p["Threshold"]),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[{"name": d["Name"], "value": d["Value"]} for d in p.get("Dimensions", [])],
            alarm_actions=list(p.get("AlarmActions", [])),
            ok_actions=list(p.get("OKActions", [])),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(resource_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


def install() -> None:
    Table.create_from_cloudformation_json = classmethod(_table_create_with_ttl)
    DBInstance.create_from_cloudformation_json = classmethod(_db_create_with_managed_secret)
    DBInstance.get_cfn_attribute = _db_get_attribute_with_secret
    DBInstance.has_cfn_attr = classmethod(_db_has_attribute_with_secret)
    TaskDefinition.create_from_cloudformation_json = classmethod(_task_definition_create)
    TaskDefinition.update_from_cloudformation_json = classmethod(_task_definition_update)
    parsing.ResourceMap.build_resource_diff = _build_resource_diff_transitively
    # The new CloudFormationModel subclasses above are found by moto's (cached) model map.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
