#!/usr/bin/env bash
# `make run`: the whole platform on this machine, in DRY_RUN, against local AWS emulators.
#
#   1. moto_server on 127.0.0.1:5000 (account 809904170947, so the seed SNS topic ARN matches);
#      a moto already listening there is reused, anything else on the port is refused.
#   2. the local End User Messaging Social (localdev/fake_socialmessaging.py) on 127.0.0.1:5001: a
#      linked WABA with approved sample templates; it also answers SMS-Voice v2 and writes inbound
#      media into the local S3.
#   3. bootstrap_aws (queues, buckets, DynamoDB tables, secrets, SES identity, SNS topic),
#      migrate (SQLite, db.sqlite3), collectstatic, and the local Admin login (printed).
#   4. web on http://127.0.0.1:8000, a Celery worker on every queue and Celery beat, together
#      under honcho (Procfile.local). Ctrl-C, or SIGTERM to this script, stops everything it started.
#
# The environment is scripts/local-env.sh (forced, whatever the shell says); it also names the
# variables that move the ports and paths (WEB_PORT, MOTO_PORT, FAKE_SOCIAL_PORT, WECARE_SQLITE_PATH,
# WECARE_RUN_DIR). Logs: .run/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$PWD/.venv/bin"
if [ ! -x "$BIN/python" ]; then
  echo "run-local: no virtualenv in .venv: use 'make run', which installs it first." >&2
  exit 1
fi
export PATH="$BIN:$PATH"
source scripts/local-env.sh
RUN_DIR="$WECARE_RUN_DIR"

mkdir -p "$RUN_DIR"
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
FAKE_PID=""
HONCHO_PID=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$HONCHO_PID$MOTO_PID$FAKE_PID" ] || return 0
  if [ -n "$HONCHO_PID" ] && kill -0 "$HONCHO_PID" 2>/dev/null; then
    kill -TERM "$HONCHO_PID" 2>/dev/null || true  # honcho stops web, worker and beat (SIGKILL after 5 s)
    wait "$HONCHO_PID" 2>/dev/null || true
  fi
  if [ -n "$FAKE_PID" ] && kill -0 "$FAKE_PID" 2>/dev/null; then
    kill -TERM "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
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
  die "port $WEB_PORT is already in use (another 'make run'?): stop that process first, or set WEB_PORT."
fi
if port_in_use "$FAKE_SOCIAL_PORT"; then
  die "port $FAKE_SOCIAL_PORT (the local End User Messaging Social) is already in use: stop that process first, or set FAKE_SOCIAL_PORT."
fi

if port_in_use "$MOTO_PORT"; then
  account="$(moto_account)" || die "port $MOTO_PORT is in use by something that is not moto_server: stop it first."
  if [ "$account" != "$MOTO_ACCOUNT_ID" ]; then
    die "the moto_server on port $MOTO_PORT runs AWS account $account; the platform needs $MOTO_ACCOUNT_ID (the seed SNS topic ARN): stop it, or restart it with MOTO_ACCOUNT_ID=$MOTO_ACCOUNT_ID."
  fi
  say "reusing the moto_server already on 127.0.0.1:$MOTO_PORT (it keeps running after this stops)"
else
  say "starting moto_server on 127.0.0.1:$MOTO_PORT (log: $RUN_DIR/moto.log)"
  python scripts/moto_emulator.py -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 150); do
    [ "$(moto_account || true)" = "$MOTO_ACCOUNT_ID" ] && break
    kill -0 "$MOTO_PID" 2>/dev/null || die "moto_server exited: see $RUN_DIR/moto.log"
    sleep 0.2
  done
  [ "$(moto_account || true)" = "$MOTO_ACCOUNT_ID" ] || die "moto_server did not answer within 30 s: see $RUN_DIR/moto.log"
fi

say "starting the local End User Messaging Social on 127.0.0.1:$FAKE_SOCIAL_PORT (log: $RUN_DIR/socialmessaging.log)"
python localdev/fake_socialmessaging.py --port "$FAKE_SOCIAL_PORT" --samples --s3-endpoint "$AWS_ENDPOINT_URL" \
  >"$RUN_DIR/socialmessaging.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do
  port_in_use "$FAKE_SOCIAL_PORT" && break
  kill -0 "$FAKE_PID" 2>/dev/null || die "the local End User Messaging Social exited: see $RUN_DIR/socialmessaging.log"
  sleep 0.1
done
port_in_use "$FAKE_SOCIAL_PORT" || die "the local End User Messaging Social did not answer within 10 s"

say "creating AWS resources on the emulator"
python manage.py bootstrap_aws
say "migrating the SQLite database ($WECARE_SQLITE_PATH)"
python manage.py migrate --no-input
say "collecting static files"
python manage.py collectstatic --no-input --verbosity 0
say "syncing the WhatsApp templates of the local WABA"
python manage.py sync_whatsapp_templates
python -m localdev.sns_local >/dev/null  # the local SNS signing certificate of play_customer
say "local login"
LOGIN="$(python manage.py ensure_local_login)"
echo "$LOGIN"

# The worker consumes every work queue named in settings but bulk-queue (not the dead-letter queues);
# bulk chunks have a worker of their own, BULK_WORKER_CONCURRENCY processes (2-5, validated by settings).
read -r WORKER_QUEUES BULK_QUEUE BULK_WORKER_CONCURRENCY < <(python -c 'import django; django.setup(); from django.conf import settings as s; print(",".join([s.QUEUE_DEFAULT, s.QUEUE_OUTBOUND, s.QUEUE_INBOUND, s.QUEUE_AI]), s.QUEUE_BULK, s.BULK_WORKER_CONCURRENCY)' 2>/dev/null)
export WORKER_QUEUES BULK_QUEUE BULK_WORKER_CONCURRENCY WEB_PORT

cat <<EOF

  WECARE.DIGITAL runs on http://127.0.0.1:$WEB_PORT  (admin: /admin/, API docs: /api/docs/, health: /healthz)
  $LOGIN
  ENVIRONMENT=local SEND_MODE=DRY_RUN; AWS is moto_server on $AWS_ENDPOINT_URL; worker queues: $WORKER_QUEUES; bulk worker: $BULK_QUEUE × $BULK_WORKER_CONCURRENCY
  End User Messaging Social (local): $AWS_ENDPOINT_URL_SOCIALMESSAGING; play the customer: scripts/manage.sh play_customer --help
  A new password for the local login: make password (or scripts/manage.sh ensure_local_login --reset-password)
  Ctrl-C stops everything.

EOF
# An empty env file: honcho would otherwise read a .env over the values forced above.
: >"$RUN_DIR/honcho.env"
honcho start --procfile Procfile.local --env "$RUN_DIR/honcho.env" &
HONCHO_PID=$!
set +e
wait "$HONCHO_PID"
status=$?
HONCHO_PID=""
exit "$status"
