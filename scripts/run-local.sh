#!/usr/bin/env bash
# `make run`: the whole platform on this machine, in DRY_RUN, against a local AWS emulator.
#
#   1. moto_server on 127.0.0.1:5000 (account 809904170947, so the seed SNS topic ARN matches);
#      a moto already listening there is reused, anything else on the port is refused.
#   2. bootstrap_aws (queues, buckets, DynamoDB tables, secrets, SES identity, SNS topic),
#      migrate (SQLite, db.sqlite3), collectstatic, and the local Admin login (printed).
#   3. web on http://127.0.0.1:8000, a Celery worker on every queue and Celery beat, together
#      under honcho (Procfile.local). Ctrl-C, or SIGTERM to this script, stops everything it started.
#
# Settings come from this shell's environment, except the ones forced below. Logs: .run/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$PWD/.venv/bin"
if [ ! -x "$BIN/python" ]; then
  echo "run-local: no virtualenv in .venv: use 'make run', which installs it first." >&2
  exit 1
fi
export PATH="$BIN:$PATH"
export PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=wecare.settings

MOTO_PORT=5000
WEB_PORT=8000
export MOTO_ACCOUNT_ID=809904170947

# Local only, whatever the shell says: never LIVE, never a real AWS account, never another database.
export ENVIRONMENT=local SEND_MODE=DRY_RUN
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset DATABASE_URL AWS_PROFILE

mkdir -p .run
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'run-local: %s\n' "$*" >&2; exit 1; }

port_in_use() {
  python - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    s.settimeout(0.5)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# Prints the AWS account of the moto_server at $AWS_ENDPOINT_URL; fails if what answers is not moto.
moto_account() {
  python - "$AWS_ENDPOINT_URL" <<'PY' 2>/dev/null
import json, sys, urllib.request

import boto3

url = sys.argv[1]
with urllib.request.urlopen(url + "/moto-api/data.json", timeout=2) as response:
    json.load(response)  # only moto serves this
print(boto3.client("sts", endpoint_url=url, region_name="us-east-1").get_caller_identity()["Account"])
PY
}

MOTO_PID=""
HONCHO_PID=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$HONCHO_PID$MOTO_PID" ] || return 0
  if [ -n "$HONCHO_PID" ] && kill -0 "$HONCHO_PID" 2>/dev/null; then
    kill -TERM "$HONCHO_PID" 2>/dev/null || true  # honcho stops web, worker and beat (SIGKILL after 5 s)
    wait "$HONCHO_PID" 2>/dev/null || true
  fi
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill -TERM "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if port_in_use "$WEB_PORT"; then
  die "port $WEB_PORT is already in use (another 'make run'?): stop that process first."
fi

if port_in_use "$MOTO_PORT"; then
  account="$(moto_account)" || die "port $MOTO_PORT is in use by something that is not moto_server: stop it first."
  if [ "$account" != "$MOTO_ACCOUNT_ID" ]; then
    die "the moto_server on port $MOTO_PORT runs AWS account $account; the platform needs $MOTO_ACCOUNT_ID (the seed SNS topic ARN): stop it, or restart it with MOTO_ACCOUNT_ID=$MOTO_ACCOUNT_ID."
  fi
  say "reusing the moto_server already on 127.0.0.1:$MOTO_PORT (it keeps running after this stops)"
else
  say "starting moto_server on 127.0.0.1:$MOTO_PORT (log: .run/moto.log)"
  python scripts/moto_emulator.py -H 127.0.0.1 -p "$MOTO_PORT" >.run/moto.log 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 150); do
    [ "$(moto_account || true)" = "$MOTO_ACCOUNT_ID" ] && break
    kill -0 "$MOTO_PID" 2>/dev/null || die "moto_server exited: see .run/moto.log"
    sleep 0.2
  done
  [ "$(moto_account || true)" = "$MOTO_ACCOUNT_ID" ] || die "moto_server did not answer within 30 s: see .run/moto.log"
fi

say "creating AWS resources on the emulator"
python manage.py bootstrap_aws
say "migrating the SQLite database (db.sqlite3)"
python manage.py migrate --no-input
say "collecting static files"
python manage.py collectstatic --no-input --verbosity 0
say "local login"
LOGIN="$(python manage.py ensure_local_login)"
echo "$LOGIN"

# The worker consumes every work queue named in settings but bulk-queue (not the dead-letter queues);
# bulk chunks have a worker of their own, BULK_WORKER_CONCURRENCY processes (2-5, validated by settings).
read -r WORKER_QUEUES BULK_QUEUE BULK_WORKER_CONCURRENCY < <(python -c 'import django; django.setup(); from django.conf import settings as s; print(",".join([s.QUEUE_DEFAULT, s.QUEUE_OUTBOUND, s.QUEUE_INBOUND]), s.QUEUE_BULK, s.BULK_WORKER_CONCURRENCY)' 2>/dev/null)
export WORKER_QUEUES BULK_QUEUE BULK_WORKER_CONCURRENCY WEB_PORT

cat <<EOF

  WECARE.DIGITAL runs on http://127.0.0.1:$WEB_PORT  (admin: /admin/, API docs: /api/docs/, health: /healthz)
  $LOGIN
  ENVIRONMENT=local SEND_MODE=DRY_RUN; AWS is moto_server on $AWS_ENDPOINT_URL; worker queues: $WORKER_QUEUES; bulk worker: $BULK_QUEUE × $BULK_WORKER_CONCURRENCY
  Ctrl-C stops everything.

EOF
# An empty env file: honcho would otherwise read a .env over the values forced above.
: >.run/honcho.env
honcho start --procfile Procfile.local --env .run/honcho.env &
HONCHO_PID=$!
set +e
wait "$HONCHO_PID"
status=$?
HONCHO_PID=""
exit "$status"
