#!/usr/bin/env bash
# The image's one entrypoint. `entrypoint.sh ROLE` checks the platform's AWS resources
# (`manage.py bootstrap_aws --check`) and, only if they are as needed, starts ROLE:
#   web          gunicorn on :$PORT (8000) behind the load balancer
#   worker       Celery on the default, outbound, inbound and AI queues
#   bulk-worker  Celery on the bulk queue, $BULK_WORKER_CONCURRENCY (2-5) processes
#   beat         the Celery scheduler (run exactly one)
#   relay        the inbound outbox relay loop (`manage.py relay_inbound_events`; extra arguments,
#                e.g. --once, are passed to it)
#   migrate      database migrations (a one-off task of scripts/deploy.sh)
# `entrypoint.sh health ROLE` is the containers' health check.
set -euo pipefail
cd "${APP_DIR:-$(dirname "$0")/..}"
PYTHON="${PYTHON:-python}"
ROLES="web worker bulk-worker beat relay migrate"

usage() {
  echo "usage: entrypoint.sh {${ROLES// /|}} | entrypoint.sh health ROLE" >&2
  exit 64
}

known_role() { [[ " $ROLES " == *" $1 "* ]]; }

health() {
  local role="${1:-}"
  known_role "$role" || usage
  if [ "$role" = web ]; then
    # /healthz answers 200 when the database, the broker and AWS answer; the Host is a name Django serves.
    "$PYTHON" - <<'EOF'
import os, sys, urllib.request
host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip()
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz",
    headers={"Host": host, "X-Forwarded-Proto": "https"},
)
try:
    sys.exit(0 if urllib.request.urlopen(request, timeout=5).status == 200 else 1)
except Exception as exc:
    print(f"web unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
EOF
  elif [ "$role" = relay ]; then
    # The relay: the main process (PID 1 in the container) is alive and is the relay loop.
    tr '\0' ' ' </proc/1/cmdline | grep -q relay_inbound_events
  else
    # Celery roles: the main process (PID 1 in the container) is alive and is Celery.
    tr '\0' ' ' </proc/1/cmdline | grep -q celery
  fi
}

role="${1:-}"
if [ "$role" = health ]; then
  health "${2:-}"
  exit $?
fi
if [ -z "$role" ] || ! known_role "$role"; then
  echo "entrypoint: unknown role '${role}'" >&2
  usage
fi

# Every role checks its world first and refuses to start on a problem, listing them all.
if ! "$PYTHON" manage.py bootstrap_aws --check; then
  echo "entrypoint: refusing to start ${role}: the AWS resources listed above are missing or wrong." >&2
  exit 78
fi

# Queue names come from settings (one place); Celery adds the environment's prefix itself.
queues() {
  local names
  names="$("$PYTHON" -c 'import django; django.setup(); from django.conf import settings as s; print(",".join([s.QUEUE_DEFAULT, s.QUEUE_OUTBOUND, s.QUEUE_INBOUND, s.QUEUE_AI]), s.QUEUE_BULK, s.BULK_WORKER_CONCURRENCY)')" || {
    echo "entrypoint: could not read the queue names from the settings" >&2
    exit 1
  }
  echo "$names"
}
CELERY_FLAGS=(--loglevel "${LOG_LEVEL:-INFO}" --without-heartbeat --without-mingle --without-gossip)

case "$role" in
  web)
    if [ -n "${ECS_CONTAINER_METADATA_URI_V4:-}" ]; then
      # The load balancer's health check calls the task's own address: Django must serve that Host too.
      task_ip="$("$PYTHON" -c 'import json, os, urllib.request; m = json.load(urllib.request.urlopen(os.environ["ECS_CONTAINER_METADATA_URI_V4"], timeout=2)); print(m["Networks"][0]["IPv4Addresses"][0])' 2>/dev/null || true)"
      [ -n "$task_ip" ] && export ALLOWED_HOSTS="${ALLOWED_HOSTS:+$ALLOWED_HOSTS,}$task_ip"
    fi
    exec gunicorn wecare.wsgi:application \
      --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-3}" --timeout "${WEB_TIMEOUT:-60}" \
      --access-logfile - --forwarded-allow-ips "*"
    ;;
  worker)
    read -r worker_queues _ _ <<<"$(queues)"
    exec celery -A wecare worker --queues "$worker_queues" --concurrency "${WORKER_CONCURRENCY:-2}" "${CELERY_FLAGS[@]}"
    ;;
  bulk-worker)
    read -r _ bulk_queue concurrency <<<"$(queues)"
    exec celery -A wecare worker --queues "$bulk_queue" --concurrency "$concurrency" --hostname "bulk@%h" "${CELERY_FLAGS[@]}"
    ;;
  beat)
    exec celery -A wecare beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  relay)
    # Stored inbound events to the inbound queue in batches; SIGTERM (ECS stopping it) ends the loop.
    exec "$PYTHON" manage.py relay_inbound_events "${@:2}"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --noinput
    ;;
esac
