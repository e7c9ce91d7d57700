"""Deploy one environment, chosen by the git branch (requirement 10). Run through scripts/deploy.sh.

    scripts/deploy.sh BRANCH --plan              # print what BRANCH deploys, change nothing
    scripts/deploy.sh BRANCH --image IMAGE_URI   # deploy IMAGE_URI to BRANCH's environment

main and hotfix/* deploy to production with SEND_MODE=LIVE; release/* to staging and feature/* to
preview, both DRY_RUN. Any other branch, and LIVE anywhere but production, is refused.

A deployment: (1) the data stack (queues, tables, database, ...); (2) the compute stack with the new
image for the migrate task only; (3) `migrate` as a one-off task, which must exit 0; (4) the compute stack
with the new image for every service (ECS rolls them; the circuit breaker rolls back a failing one).
Migrations therefore run before any new code serves, and must keep the old code working (add first,
remove in a later release).

Plain Python and boto3 (no Django): CI runs it before any settings exist.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
DOMAINS = {
    "production": "base.wecare.digital",
    "staging": "staging.base.wecare.digital",
    "preview": "preview.base.wecare.digital",
}


class Refused(Exception):
    """The branch or the send mode may not be deployed."""


@dataclass(frozen=True)
class Plan:
    branch: str
    environment: str
    send_mode: str

    @property
    def data_stack(self) -> str:
        return f"base-wecare-digital-{self.environment}-data"

    @property
    def compute_stack(self) -> str:
        return f"base-wecare-digital-{self.environment}-compute"

    @property
    def domain(self) -> str:
        return DOMAINS[self.environment]


def plan_for(branch: str, send_mode: str | None = None) -> Plan:
    """The environment and send mode of ``branch``; ``send_mode`` may only lower LIVE to DRY_RUN."""
    branch = branch.strip().removeprefix("refs/heads/")
    if not BRANCH_NAME.match(branch):
        raise Refused(f"{branch!r} is not a branch name this command deploys.")
    if branch == "main" or branch.startswith("hotfix/"):
        environment, mode = "production", "LIVE"
    elif branch.startswith("release/"):
        environment, mode = "staging", "DRY_RUN"
    elif branch.startswith("feature/"):
        environment, mode = "preview", "DRY_RUN"
    else:
        raise Refused(
            f"branch {branch!r} deploys nowhere: main and hotfix/* deploy to production, release/* to staging, "
            "feature/* to preview."
        )
    if send_mode:
        if send_mode not in ("DRY_RUN", "LIVE"):
            raise Refused(f"SEND_MODE={send_mode!r} is not valid: use DRY_RUN or LIVE.")
        if send_mode == "LIVE" and environment != "production":
            raise Refused(f"SEND_MODE=LIVE is refused for {environment} (branch {branch}): only production sends.")
        mode = send_mode
    return Plan(branch=branch, environment=environment, send_mode=mode)


# --- AWS -----------------------------------------------------------------------------------------


def _waiter_config(poll_seconds: int) -> dict:
    return {"Delay": poll_seconds, "MaxAttempts": max(1, 3600 // poll_seconds)}


def stack_outputs(cfn, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def stack_parameters(cfn, name: str) -> dict[str, str] | None:
    """The parameters of an existing stack, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def deploy_stack(cfn, name: str, template: str, parameters: dict[str, str], *, poll_seconds: int = 15) -> dict:
    """Create or update stack ``name`` from deploy/``template`` and wait for it; its outputs."""
    from botocore.exceptions import ClientError

    arguments = {
        "StackName": name,
        "TemplateBody": (DEPLOY_DIR / template).read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Tags": [{"Key": "project", "Value": "base-wecare-digital"}],
    }
    if stack_parameters(cfn, name) is None:
        cfn.create_stack(**arguments, OnFailure="ROLLBACK")
        waiter = "stack_create_complete"
    else:
        try:
            cfn.update_stack(**arguments)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            return stack_outputs(cfn, name)
        waiter = "stack_update_complete"
    cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=_waiter_config(poll_seconds))
    return stack_outputs(cfn, name)


def run_migrations(ecs, *, cluster: str, task_definition: str, subnets: list[str], security_group: str,
                   poll_seconds: int = 15) -> None:  # fmt: skip
    """Run the migrate task once and fail unless it exits 0."""
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [security_group],
                "assignPublicIp": "DISABLED",
            }
        },
        startedBy="scripts/deploy.sh",
    )
    if started.get("failures") or not started.get("tasks"):
        raise RuntimeError(f"the migrate task did not start: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[task_arn], WaiterConfig=_waiter_config(poll_seconds))
    task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    codes = [container.get("exitCode") for container in task.get("containers", [])]
    if not codes or any(code != 0 for code in codes):
        raise RuntimeError(
            f"migrate exited with {codes} ({task.get('stoppedReason', 'no reason given')}): see its logs."
        )


@dataclass(frozen=True)
class Network:
    vpc_id: str
    public_subnets: list[str]
    private_subnets: list[str]


def deploy(plan: Plan, *, image: str, network: Network, session=None, extra_parameters: dict[str, str] | None = None,
           poll_seconds: int = 15, log=print) -> dict[str, dict[str, str]]:  # fmt: skip
    """Deploy ``image`` to ``plan``'s environment; the outputs of both stacks."""
    import boto3

    if plan.environment == "production" and not (extra_parameters or {}).get("OidcClientId"):
        # Production refuses to start without Cognito (password sign-in for everyone): say so before deploying.
        raise SystemExit("deploy: production needs OIDC_CLIENT_ID (the Cognito app client of the web sign-in).")
    session = session or boto3.session.Session()
    cfn, ecs = session.client("cloudformation"), session.client("ecs")
    log(f"data stack {plan.data_stack}")
    data = deploy_stack(
        cfn,
        plan.data_stack,
        "data.yaml",
        {
            "Environment": plan.environment,
            "VpcId": network.vpc_id,
            "DatabaseSubnetIds": ",".join(network.private_subnets),
            "DatabaseMultiAZ": "true" if plan.environment == "production" else "false",
        },
        poll_seconds=poll_seconds,
    )
    current = stack_parameters(cfn, plan.compute_stack)
    compute_parameters = {
        "Environment": plan.environment,
        "SendMode": plan.send_mode,
        "DataStackName": plan.data_stack,
        "VpcId": network.vpc_id,
        "PublicSubnetIds": ",".join(network.public_subnets),
        "PrivateSubnetIds": ",".join(network.private_subnets),
        "DomainName": plan.domain,
        **(extra_parameters or {}),
    }
    # Services keep the running image until the migrations of the new one have run (first deployment: new).
    log(f"compute stack {plan.compute_stack}: migrate task on {image}")
    compute = deploy_stack(
        cfn,
        plan.compute_stack,
        "compute.yaml",
        {**compute_parameters, "ImageUri": current["ImageUri"] if current else image, "MigrationImageUri": image},
        poll_seconds=poll_seconds,
    )
    log("migrate")
    run_migrations(
        ecs,
        cluster=compute["ClusterName"],
        task_definition=compute["MigrateTaskDefinitionArn"],
        subnets=network.private_subnets,
        security_group=data["AppSecurityGroupId"],
        poll_seconds=poll_seconds,
    )
    log(f"compute stack {plan.compute_stack}: services on {image}")
    compute = deploy_stack(
        cfn,
        plan.compute_stack,
        "compute.yaml",
        {**compute_parameters, "ImageUri": image, "MigrationImageUri": image},
        poll_seconds=poll_seconds,
    )
    return {"data": data, "compute": compute}


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise Refused(f"{name} is required to deploy (see README, Deploying to AWS).")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy.sh", description=__doc__.splitlines()[0])
    parser.add_argument("branch", help="the git branch being deployed (main, hotfix/*, release/*, feature/*)")
    parser.add_argument("--plan", action="store_true", help="print the environment and stacks; change nothing")
    parser.add_argument("--image", default=os.environ.get("IMAGE_URI", ""), help="image URI (default $IMAGE_URI)")
    args = parser.parse_args(argv)
    try:
        plan = plan_for(args.branch, os.environ.get("SEND_MODE") or None)
        print(f"branch={plan.branch} environment={plan.environment} send_mode={plan.send_mode}")
        print(f"stacks={plan.data_stack},{plan.compute_stack} domain={plan.domain}")
        if args.plan:
            return 0
        if not args.image:
            raise Refused("--image (or IMAGE_URI) is required to deploy.")
        network = Network(
            vpc_id=_required("VPC_ID"),
            public_subnets=_required("PUBLIC_SUBNET_IDS").split(","),
            private_subnets=_required("PRIVATE_SUBNET_IDS").split(","),
        )
        extra = {key: os.environ[env] for key, env in (("CertificateArn", "CERTIFICATE_ARN"),
                 ("OidcClientId", "OIDC_CLIENT_ID")) if os.environ.get(env)}  # fmt: skip
        deploy(plan, image=args.image, network=network, extra_parameters=extra)
    except Refused as exc:
        print(f"deploy refused: {exc}", file=sys.stderr)
        return 2
    print(f"deployed {args.image} to {plan.environment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
