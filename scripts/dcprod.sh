#!/usr/bin/env bash
# dcprod.sh — docker compose for the ProSaaS production stack.
#
# Runs `<compose> -p <project> -f deploy/compose/docker-compose.yml -f deploy/compose/docker-compose.prod.yml
# --env-file <env file> "$@"` from the repository root, whatever the caller's working directory, and
# forwards every argument unchanged. Examples:
#   scripts/dcprod.sh up -d --build
#   scripts/dcprod.sh ps
#   scripts/dcprod.sh logs -f prosaas-api
#   scripts/dcprod.sh --profile multi-worker up -d --scale worker=0
#
# Environment:
#   COMPOSE_PROJECT_NAME  project name (default: prosaas)
#   PROSAAS_ENV_FILE      env file passed with --env-file (default: deploy/compose/.env.prod; a relative
#                         path is taken from the caller's working directory)
#   DOCKER_COMPOSE        compose command to use, e.g. "docker compose" or "docker-compose" (default:
#                         `docker compose` if `docker compose version` works, else `docker-compose`)
#
# Exit status: the compose command's own; 2 when the env file is missing; 127 when no compose is found.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

handle_help "$@"

CALLER_PWD="$(pwd)"
ROOT="$PROSAAS_ROOT"
cd "$ROOT"

PROJECT="${COMPOSE_PROJECT_NAME:-prosaas}"
BASE_FILE="deploy/compose/docker-compose.yml"
PROD_FILE="deploy/compose/docker-compose.prod.yml"

if [[ -n "${PROSAAS_ENV_FILE:-}" ]]; then
    ENV_FILE="$PROSAAS_ENV_FILE"
    [[ "$ENV_FILE" == /* ]] || ENV_FILE="$CALLER_PWD/$ENV_FILE"
else
    ENV_FILE="deploy/compose/.env.prod"
fi
if [[ ! -f "$ENV_FILE" ]]; then
    echo "dcprod.sh: env file $ENV_FILE not found: copy deploy/compose/.env.prod.example to" \
        "deploy/compose/.env.prod and fill in the secrets (or point PROSAAS_ENV_FILE at yours)" >&2
    exit 2
fi

if [[ -n "${DOCKER_COMPOSE:-}" ]]; then
    read -r -a COMPOSE <<<"$DOCKER_COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
else
    echo "dcprod.sh: neither 'docker compose' (v2 plugin) nor 'docker-compose' is available;" \
        "install the compose plugin or set DOCKER_COMPOSE" >&2
    exit 127
fi

exec "${COMPOSE[@]}" -p "$PROJECT" -f "$BASE_FILE" -f "$PROD_FILE" --env-file "$ENV_FILE" "$@"
