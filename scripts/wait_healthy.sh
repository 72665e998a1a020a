#!/usr/bin/env bash
# wait_healthy.sh — wait until every long-running container of the production stack is up and healthy.
#
# Usage: scripts/wait_healthy.sh [-h]
#
# Polls `scripts/dcprod.sh --profile multi-worker ps --all --format json` until prosaas-api, prosaas-calls, worker (or
# worker-high/default/low), scheduler, redis and nginx have containers and every container except the
# one-shot `migrate` is running and healthy (running without a healthcheck counts as up). The first poll
# is immediate; between polls it sleeps the interval, never past the deadline. Prints what it still waits
# for when that changes, and on timeout which services are not healthy and why.
#
# Environment:
#   DEPLOY_HEALTH_TIMEOUT   seconds to wait in all (default: 180)
#   DEPLOY_HEALTH_INTERVAL  seconds between polls (default: 2)
#   PROSAAS_PYTHON          python interpreter used to parse JSON (default: python3)
#   and dcprod.sh's: COMPOSE_PROJECT_NAME, PROSAAS_ENV_FILE, DOCKER_COMPOSE
#
# Exit status: 0 when healthy, 1 on timeout, 2 on bad usage.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

no_arguments "$@"

absolute_env_file
ROOT="$PROSAAS_ROOT"
cd "$ROOT"
PY="${PROSAAS_PYTHON:-python3}"
CHECKS="$ROOT/scripts/lib/compose_checks.py"
TIMEOUT="${DEPLOY_HEALTH_TIMEOUT:-180}"
INTERVAL="${DEPLOY_HEALTH_INTERVAL:-2}"
if ! [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || ! [[ "$INTERVAL" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "wait_healthy.sh: DEPLOY_HEALTH_TIMEOUT must be whole seconds and DEPLOY_HEALTH_INTERVAL a number" >&2
    exit 2
fi

# Reading with the multi-worker profile on sees worker-high/default/low whether or not they run (ps and
# logs list only existing containers), so the same command works after `make up-multi-worker`.
PROFILE_ARGS=(--profile multi-worker)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

now_ms() {
    local t="${EPOCHREALTIME/,/.}" # seconds.microseconds (bash 5; the separator follows the locale)
    echo $((${t%.*} * 1000 + 10#${t#*.} / 1000))
}

start_ms="$(now_ms)"
deadline_ms=$((start_ms + TIMEOUT * 1000))
interval_ms="$(awk -v s="$INTERVAL" 'BEGIN { printf "%d", s * 1000 }')"
last=""
status=""
while :; do
    if "$ROOT/scripts/dcprod.sh" "${PROFILE_ARGS[@]}" ps --all --format json >"$WORK/ps.json" 2>"$WORK/ps.err"; then
        if status="$("$PY" "$CHECKS" health "$WORK/ps.json" 2>&1)"; then
            echo "wait_healthy: all services healthy after $((($(now_ms) - start_ms) / 1000))s"
            exit 0
        fi
    else
        status="docker compose ps failed: $(head -n 1 "$WORK/ps.err")"
    fi
    if [[ "$status" != "$last" ]]; then
        echo "wait_healthy: waiting for: ${status//$'\n'/; }"
        last="$status"
    fi
    remaining_ms=$((deadline_ms - $(now_ms)))
    if ((remaining_ms <= 0)); then
        break
    fi
    sleep_ms=$((remaining_ms < interval_ms ? remaining_ms : interval_ms))
    sleep "$(awk -v ms="$sleep_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
done

echo "wait_healthy: timed out after ${TIMEOUT}s; not healthy:" >&2
while IFS= read -r line; do
    echo "  $line" >&2
done <<<"$status"
echo "wait_healthy: see scripts/dcprod.sh ps and scripts/dcprod.sh logs <service>" >&2
exit 1
