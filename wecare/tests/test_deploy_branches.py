"""scripts/deploy.sh: the branch chooses the environment and the send mode (requirement 10)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploy.deploy import Refused, plan_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("branch", "environment", "send_mode"),
    [
        ("main", "production", "LIVE"),
        ("refs/heads/main", "production", "LIVE"),
        ("hotfix/tier-alert", "production", "LIVE"),
        ("release/2026.12", "staging", "DRY_RUN"),
        ("feature/new-inbox", "preview", "DRY_RUN"),
        ("feature/ai/suggest-v2", "preview", "DRY_RUN"),
    ],
)
def test_each_kind_of_branch_deploys_to_its_environment(branch, environment, send_mode):
    plan = plan_for(branch)

    assert (plan.environment, plan.send_mode) == (environment, send_mode)
    assert plan.data_stack == f"base-wecare-digital-{environment}-data"
    assert plan.compute_stack == f"base-wecare-digital-{environment}-compute"


@pytest.mark.parametrize(
    "branch",
    ["develop", "master", "bugfix/x", "hotfix", "feature/", "release", "main2", "Main", "main;id", "../main", ""],
)
def test_any_other_branch_is_refused(branch):
    with pytest.raises(Refused):
        plan_for(branch)


@pytest.mark.parametrize("branch", ["release/2026.12", "feature/new-inbox"])
def test_live_is_refused_outside_production(branch):
    with pytest.raises(Refused, match="SEND_MODE=LIVE is refused for (staging|preview)"):
        plan_for(branch, "LIVE")


def test_production_may_be_deployed_in_dry_run_but_not_in_an_unknown_mode():
    assert plan_for("main", "DRY_RUN").send_mode == "DRY_RUN"
    with pytest.raises(Refused, match="SEND_MODE='live' is not valid"):
        plan_for("main", "live")


def _deploy_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [str(ROOT / "scripts" / "deploy.sh"), *args], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_the_script_prints_the_plan_of_a_branch():
    result = _deploy_sh("hotfix/tier-alert", "--plan")

    assert result.returncode == 0, result.stderr
    assert "branch=hotfix/tier-alert environment=production send_mode=LIVE" in result.stdout
    assert "domain=base.wecare.digital" in result.stdout


def test_the_script_refuses_live_for_a_release_branch_and_an_unknown_branch():
    live = _deploy_sh("release/2026.12", "--plan", SEND_MODE="LIVE")
    unknown = _deploy_sh("develop", "--plan")

    assert live.returncode == 2
    assert "deploy refused: SEND_MODE=LIVE is refused for staging" in live.stderr
    assert unknown.returncode == 2
    assert "deploy refused: branch 'develop' deploys nowhere" in unknown.stderr


def test_the_script_refuses_to_deploy_without_an_image_or_a_network():
    no_image = _deploy_sh("feature/x")
    no_network = _deploy_sh("feature/x", "--image", "registry/base-wecare-digital:abc")

    assert no_image.returncode == 2 and "--image (or IMAGE_URI) is required" in no_image.stderr
    assert no_network.returncode == 2 and "VPC_ID is required" in no_network.stderr
