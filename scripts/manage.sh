#!/usr/bin/env bash
# `python manage.py ...` against the platform `make run` serves, from any shell:
#   scripts/manage.sh ensure_local_login --reset-password
#   scripts/manage.sh play_customer text "Hello"
#   scripts/manage.sh shell
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "manage.sh: no virtualenv in .venv: run 'make install' (or 'make run') first." >&2
  exit 1
fi
source scripts/local-env.sh
export PATH="$PWD/.venv/bin:$PATH"
exec python manage.py "$@"
