#!/usr/bin/env bash
# Deploy the environment of a git branch (deploy/deploy.py): main, hotfix/* → production (LIVE);
# release/* → staging, feature/* → preview (DRY_RUN). Anything else is refused.
# Usage: scripts/deploy.sh BRANCH --plan | scripts/deploy.sh BRANCH --image IMAGE_URI
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
exec "$PYTHON" -m deploy.deploy "$@"
