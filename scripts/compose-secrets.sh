#!/bin/sh
# The secrets compose.yaml needs, as files (docker compose `secrets:`; riskmon reads each as `<VARIABLE>_FILE`):
#   sh scripts/compose-secrets.sh [dir]        (dir: default ./secrets; then RISKMON_SECRETS_DIR=<dir> docker compose up)
# Files that exist are kept (run it again after adding a service and only the missing ones are written). Passwords are
# 48 hex digits from /dev/urandom; the API keys are $RISKMON_API_KEYS when set, else one new admin key, printed once.
# The directory is 0700 and its files 0644: each file is mounted alone into the containers, where the services' own
# users (node, postgres) must read it.
set -eu
dir="${1:-./secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
write() { # name value
  if [ ! -s "$dir/$1" ]; then
    umask 022
    printf '%s' "$2" > "$dir/$1"
    chmod 644 "$dir/$1"
    echo "compose-secrets: wrote $dir/$1" >&2
  fi
}
read_secret() { cat "$dir/$1"; }

# PostgreSQL: the superuser (migrations, the demo's generator) and one login role per service (ops/postgres-init).
write pg_password "$(random)"
write pg_cdc_password "$(random)"
write pg_api_password "$(random)"
write pg_alerting_password "$(random)"
url() { # role password-file database
  printf 'postgres://%s:%s@postgres:5432/%s' "$1" "$(read_secret "$2")" "$3"
}
write migrate_pg_url "$(url postgres pg_password riskmon_source)"
write migrate_risk_pg_url "$(url postgres pg_password riskmon_risk)"
write cdc_pg_url "$(url riskmon_cdc pg_cdc_password riskmon_source)"
write api_pg_url "$(url riskmon_api pg_api_password riskmon_source)"
write api_risk_pg_url "$(url riskmon_api pg_api_password riskmon_risk)"
write alerting_pg_url "$(url riskmon_alerting pg_alerting_password riskmon_source)"
write alerting_risk_pg_url "$(url riskmon_alerting pg_alerting_password riskmon_risk)"

# API keys (key:role[:name], comma-separated; keys of at least 24 characters) and the key-id secret.
if [ ! -s "$dir/api_keys" ]; then
  if [ -n "${RISKMON_API_KEYS:-}" ]; then
    write api_keys "$RISKMON_API_KEYS"
  else
    key="$(random)"
    write api_keys "$key:admin"
    echo "compose-secrets: admin API key (sign in at http://127.0.0.1:8080/?key=$key): $key" >&2
  fi
fi
write key_id_secret "$(random)"
# Slack and the signed webhooks: from the environment when set, else empty files (that channel stays off). Put the
# URLs here, not in compose's environment; a webhook URL needs its signing secret (openssl rand -hex 32) beside it.
optional() { # name variable
  if [ ! -e "$dir/$1" ]; then
    eval "value=\${$2:-}"
    umask 022
    printf '%s' "$value" > "$dir/$1"
    chmod 644 "$dir/$1"
  fi
}
optional slack_webhook_url RISKMON_SLACK_WEBHOOK_URL
optional action_webhook_url RISKMON_ACTION_WEBHOOK_URL
optional action_webhook_secret RISKMON_ACTION_WEBHOOK_SECRET
optional alert_webhook_url RISKMON_ALERT_WEBHOOK_URL
optional alert_webhook_secret RISKMON_ALERT_WEBHOOK_SECRET
echo "compose-secrets: $dir is ready: RISKMON_SECRETS_DIR=$dir docker compose up -d" >&2
