# shellcheck shell=bash
# The environment of `make run`, sourced by scripts/run-local.sh and scripts/manage.sh, so a command
# typed in a new shell (`scripts/manage.sh ...`, `make password`) sees the same platform the running
# `make run` serves. Run from the repository root.
#
# Local only, whatever the shell says: never LIVE, never a real AWS account, never another database.
# Ports and paths may be moved (the end-to-end test of `make run` does, to run beside yours):
#   WEB_PORT (8000), MOTO_PORT (5000), FAKE_SOCIAL_PORT (5001, the local End User Messaging Social),
#   WECARE_SQLITE_PATH (db.sqlite3), WECARE_RUN_DIR (.run: logs, the local SNS signing certificate).
export WEB_PORT="${WEB_PORT:-8000}"
export MOTO_PORT="${MOTO_PORT:-5000}"
export FAKE_SOCIAL_PORT="${FAKE_SOCIAL_PORT:-5001}"
export WECARE_SQLITE_PATH="${WECARE_SQLITE_PATH:-$PWD/db.sqlite3}"
export WECARE_RUN_DIR="${WECARE_RUN_DIR:-$PWD/.run}"
export MOTO_ACCOUNT_ID=809904170947

export PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=wecare.settings
export ENVIRONMENT=local SEND_MODE=DRY_RUN
export DATABASE_URL="sqlite:///$WECARE_SQLITE_PATH"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
# moto has no End User Messaging Social nor SMS-Voice v2: localdev/fake_socialmessaging.py serves both.
export AWS_ENDPOINT_URL_SOCIALMESSAGING="http://127.0.0.1:$FAKE_SOCIAL_PORT"
export AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2="http://127.0.0.1:$FAKE_SOCIAL_PORT"
# A local RCS agent, so the DM page's RCS composer works (DRY_RUN: nothing leaves the machine).
export RCS_AGENT_ID="${RCS_AGENT_ID:-rcs-agent-10ca1000000000000000000000000001}"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# Inbound SNS deliveries signed by `play_customer` verify against the local certificate only here.
export SNS_CERT_FETCHER=localdev.sns_local.fetch_certificate
unset AWS_PROFILE SNS_SUBSCRIBE_FETCHER
