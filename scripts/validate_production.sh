#!/usr/bin/env bash
# validate_production.sh — check the running production stack and print a PASS/WARN/FAIL table.
#
# Usage: scripts/validate_production.sh [-h]
#
# Everything is read from the running compose project through scripts/dcprod.sh --profile multi-worker
# (so single- and multi-worker deployments read alike), by service name: `ps --all --format json`,
# `config --format json`, `logs --no-color --since <window> <service>` for each service ps lists, and
# /readyz through nginx with curl. Checks (row name: rule):
#   no backend service   FAIL if a `backend` container is running; WARN if a stopped one is left over
#   migration            FAIL if a `migrate` container exited non-zero ("migration failed") or restarts;
#                        WARN while it still runs; otherwise PASS (it is one-shot, usually run with --rm)
#   service <name>       for prosaas-api, prosaas-calls, worker, scheduler, redis, nginx: every container
#                        of the service running and healthy, else FAIL (WARN: running without healthcheck).
#                        `worker` also passes when worker-high, worker-default and worker-low all do
#                        (multi-worker profile, worker scaled to 0); with --scale every container counts
#   other containers     any other container of the project (e.g. postgres, the unused worker group)
#                        judged the same way
#   worker dns config    FAIL unless every worker service in the effective config (`config`) has `dns`
#   log level            FAIL if LOG_LEVEL of an app service is not INFO; WARN if unset (code default INFO)
#   app env              FAIL if APP_ENV of an app service is not production
#   log window           FAIL if a service's logs cannot be read; WARN if no service logged anything
#   dns errors in logs   FAIL on `dns.resolution_failed` events or resolver messages ("could not translate
#                        host name", "Name or service not known", "Temporary failure in name resolution",
#                        nginx "could not be resolved" / "host not found in upstream"), at any level;
#                        WARN instead when every such line names a `target` (dns.resolution_failed,
#                        job.retrying) and dns.resolution_recovered of that target follows it
#   log verbosity        per service with >= VALIDATE_MIN_LOG_LINES lines: DEBUG lines (JSON level
#                        "debug") per 100 lines; FAIL at >= 50, WARN at >= 20
#   fake errors in logs  FAIL on an ERROR/CRITICAL line about a normal close, case-insensitive:
#                        (1) "websocket" with "disconnect" or "closed", or ConnectionClosedOK;
#                        (2) "stream ended", "stream stopped" or "stop event";
#                        (3) a normal close code 1000/1001/1005 as a close/code/status field
#                        ("close_code": 1000) or as "1000 (OK)", "1001 going away", "1005 (no status…)"
#   error lines          WARN on any other ERROR/CRITICAL line in the window
#   readyz via nginx     FAIL unless <base url>/readyz answers 200 with "status": "ready"
# Needs compose v2 (the `docker compose` plugin, or a v2 `docker-compose`): v1 has no `ps --format json`
# nor `logs --since`, so its checks FAIL with compose's own error.
# Log lines are JSON objects (level debug/info/warning/error/critical) after compose's "name-1  | "
# prefix; other lines (nginx, redis, library output) are read for words like ERROR or [error].
#
# Environment:
#   VALIDATE_LOG_WINDOW      how far back logs are read (default: 10m)
#   VALIDATE_BASE_URL        nginx base URL for /readyz; https adds -k (default: https://127.0.0.1[:HTTPS_PORT]
#                            when NGINX_TEMPLATE=ssl, else http://127.0.0.1[:HTTP_PORT]; NGINX_TEMPLATE and the
#                            ports are read from the shell, else from the env file, as compose reads them)
#   VALIDATE_CURL_TIMEOUT    seconds for the /readyz request (default: 5)
#   VALIDATE_MIN_LOG_LINES   fewest lines of a service for the verbosity ratio (default: 20)
#   VALIDATE_DEBUG_FAIL_PCT / VALIDATE_DEBUG_WARN_PCT   verbosity thresholds (default: 50 / 20)
#   PROSAAS_PYTHON           python interpreter used to parse JSON (default: python3)
#   and dcprod.sh's: COMPOSE_PROJECT_NAME, PROSAAS_ENV_FILE, DOCKER_COMPOSE
#
# Output: a table CHECK | RESULT | DETAIL, then "summary: N passed, N warnings, N failed".
# Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on bad usage.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

no_arguments "$@"

absolute_env_file
ROOT="$PROSAAS_ROOT"
cd "$ROOT"
PY="${PROSAAS_PYTHON:-python3}"
CHECKS="$ROOT/scripts/lib/compose_checks.py"
WINDOW="${VALIDATE_LOG_WINDOW:-10m}"
export VALIDATE_LOG_WINDOW="$WINDOW"

# A variable as compose sees it: the shell's value, else the last NAME=value of the env file.
compose_var() { # NAME
    local name="$1" file="${PROSAAS_ENV_FILE:-deploy/compose/.env.prod}" value
    if [[ -n "${!name:-}" ]]; then
        echo "${!name}"
        return 0
    fi
    [[ -f "$file" ]] || return 0
    value="$(sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$name=//p" "$file" | tail -n 1)"
    value="${value%\"}"
    value="${value#\"}"
    value="${value%\'}"
    echo "${value#\'}"
}

# nginx serves /readyz on 443 with the ssl template (80 only redirects) and on 80 with the http one.
if [[ -n "${VALIDATE_BASE_URL:-}" ]]; then
    BASE_URL="$VALIDATE_BASE_URL"
elif [[ "$(compose_var NGINX_TEMPLATE)" == "ssl" ]]; then
    port="$(compose_var HTTPS_PORT)"
    BASE_URL="https://127.0.0.1${port:+:$port}"
else
    port="$(compose_var HTTP_PORT)"
    BASE_URL="http://127.0.0.1${port:+:$port}"
fi
BASE_URL="${BASE_URL%/}"

# Reading with the multi-worker profile on sees worker-high/default/low whether or not they run (ps and
# logs list only existing containers), so the same command works after `make up-multi-worker`.
PROFILE_ARGS=(--profile multi-worker)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.tsv"
: >"$ROWS"

dc() {
    "$ROOT/scripts/dcprod.sh" "${PROFILE_ARGS[@]}" "$@"
}

add_row() { # RESULT CHECK DETAIL
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$ROWS"
}

fail_rows() { # COMMA-SEPARATED-CHECKS DETAIL
    local name list
    IFS=, read -r -a list <<<"$1"
    for name in "${list[@]}"; do
        add_row FAIL "$name" "$2"
    done
}

first_line() {
    local text
    text="$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | head -n 1 || true)"
    echo "${text:-no output}"
}

# Runs a compose_checks.py subcommand that prints rows; a crash of the parser becomes FAIL rows.
run_checks() { # ROW-NAMES-IF-IT-FAILS SUBCOMMAND ARGS...
    local names="$1"
    shift
    if "$PY" "$CHECKS" "$@" >"$WORK/checks.tsv" 2>"$WORK/parse.err"; then
        cat "$WORK/checks.tsv" >>"$ROWS"
        return 0
    fi
    fail_rows "$names" "could not parse the output: $(first_line "$WORK/parse.err")"
}

PS_ROWS="no backend service,migration,service prosaas-api,service prosaas-calls,service worker"
PS_ROWS+=",service scheduler,service redis,service nginx,other containers"
CONFIG_ROWS="worker dns config,log level,app env"
LOG_ROWS="log window,dns errors in logs,log verbosity,fake errors in logs,error lines"

check_containers() {
    if dc ps --all --format json >"$WORK/ps.json" 2>"$WORK/ps.err"; then
        run_checks "$PS_ROWS" ps-rows "$WORK/ps.json" "$WORK/services.txt"
        return 0
    fi
    fail_rows "$PS_ROWS" "docker compose ps failed: $(first_line "$WORK/ps.err")"
    return 1
}

check_config() {
    if dc config --format json >"$WORK/config.json" 2>"$WORK/config.err"; then
        run_checks "$CONFIG_ROWS" config-rows "$WORK/config.json"
        return 0
    fi
    fail_rows "$CONFIG_ROWS" "docker compose config failed: $(first_line "$WORK/config.err")"
}

check_logs() {
    local logs="$WORK/logs" service
    mkdir -p "$logs"
    if [[ ! -f "$WORK/services.txt" ]]; then
        fail_rows "$LOG_ROWS" "no service list: the ps output could not be parsed"
        return 0
    fi
    while IFS= read -r service; do
        [[ -n "$service" ]] || continue
        if ! dc logs --no-color --since "$WINDOW" "$service" >"$logs/$service.log" 2>"$logs/$service.stderr"; then
            first_line "$logs/$service.stderr" >"$logs/$service.err"
        fi
    done <"$WORK/services.txt"
    run_checks "$LOG_ROWS" logs-rows "$logs"
}

check_readyz() {
    local url="$BASE_URL/readyz" answer code redirect curl_rc=0
    local args=(-sS -o "$WORK/readyz.body" -w '%{http_code} %{redirect_url}' --max-time "${VALIDATE_CURL_TIMEOUT:-5}")
    [[ "$BASE_URL" != https://* ]] || args+=(-k)
    answer="$(curl "${args[@]}" "$url" 2>"$WORK/readyz.err")" || curl_rc=$?
    code="${answer%% *}"
    redirect="${answer#"$code"}"
    redirect="${redirect# }"
    [[ -z "$redirect" ]] || echo "redirected to $redirect: set VALIDATE_BASE_URL to the final address" >"$WORK/readyz.body"
    run_checks "readyz via nginx" readyz-row "$url" "$code" "$WORK/readyz.body" "$curl_rc" "$WORK/readyz.err"
}

print_table() {
    local width=5 result check detail
    while IFS=$'\t' read -r result check detail; do
        ((${#check} <= width)) || width=${#check}
    done <"$ROWS"
    printf "%-${width}s | %-6s | %s\n" "CHECK" "RESULT" "DETAIL"
    printf -v rule '%*s' "$width" ''
    printf '%s-+-%s-+-%s\n' "${rule// /-}" "------" "------"
    while IFS=$'\t' read -r result check detail; do
        printf "%-${width}s | %-6s | %s\n" "$check" "$result" "$detail"
    done <"$ROWS"
}

ps_ok=1
check_containers || ps_ok=0
check_config
if ((ps_ok)); then
    check_logs
else
    fail_rows "$LOG_ROWS" "no service list (docker compose ps failed)"
fi
check_readyz
print_table

passed="$(grep -c '^PASS' "$ROWS" || true)"
warned="$(grep -c '^WARN' "$ROWS" || true)"
failed="$(grep -c '^FAIL' "$ROWS" || true)"
echo
echo "summary: $passed passed, $warned warnings, $failed failed"
((failed == 0)) || exit 1
exit 0
