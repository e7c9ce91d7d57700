#!/usr/bin/env bash
# Run a command with the test services up: PostgreSQL (shared cluster, a database of its own)
# and a moto_server of its own on a free loopback port. Everything it started it stops.
# Usage: scripts/with-services.sh pytest -x
set -euo pipefail
cd "$(dirname "$0")/.."
PGPORT="${PGPORT:-55432}" scripts/postgres.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT="$(free_port)"
mkdir -p .run
MOTO_ACCOUNT_ID=809904170947 .venv/bin/python scripts/moto_emulator.py -H 127.0.0.1 -p "$MOTO_PORT" >".run/moto-$MOTO_PORT.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1])" "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && break
  sleep 0.1
done
export ENVIRONMENT="${ENVIRONMENT:-test}"
export SEND_MODE="${SEND_MODE:-DRY_RUN}"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export DATABASE_URL="${DATABASE_URL:-postgres://wecare@127.0.0.1:${PGPORT:-55432}/wecare_$$}"
export PATH="$PWD/.venv/bin:$PATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the project importable before pytest-django adds it
"$@"
