#!/usr/bin/env bash
# deploy.sh — build, migrate and start the production stack, wait for health, then validate it.
#
# Usage: scripts/deploy.sh [-h]
#
# Steps, each stopping the deployment when it fails:
#   1. scripts/ensure_docker_network.sh           the external network exists
#   2. scripts/dcprod.sh build                    images
#   3. scripts/dcprod.sh run --rm migrate         schema to head; on failure nothing else is started
#   4. scripts/dcprod.sh up -d                    (multi-worker: --profile multi-worker up -d --scale worker=0)
#   5. scripts/wait_healthy.sh                    every long-running service healthy
#   6. scripts/validate_production.sh             the verification checklist
#
# Environment:
#   PROSAAS_MULTI_WORKER=1  run the worker-high/default/low trio instead of the single worker
#   DEPLOY_HEALTH_TIMEOUT   seconds to wait for health (default: 180); DEPLOY_HEALTH_INTERVAL (default: 2)
#   and those of dcprod.sh, ensure_docker_network.sh and validate_production.sh
#
# Exit status: 0 when deployed and validated; otherwise the failing step's status (validation: 1,
# health timeout: 1, missing env file: 2, failed migration: the migration's status).
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

no_arguments "$@"

absolute_env_file
ROOT="$PROSAAS_ROOT"
cd "$ROOT"
SCRIPTS="$ROOT/scripts"

PROFILE_ARGS=()
UP_ARGS=()
if [[ "${PROSAAS_MULTI_WORKER:-0}" == "1" ]]; then
    PROFILE_ARGS=(--profile multi-worker)
    UP_ARGS=(--scale worker=0)
fi

step() {
    echo "==> $*"
}

run_step() { # DESCRIPTION FAILURE-MESSAGE COMMAND...
    local description="$1" failure="$2" rc=0
    shift 2
    step "$description"
    "$@" || rc=$?
    if ((rc != 0)); then
        echo "deploy: $failure (exit $rc)" >&2
        exit "$rc"
    fi
}

run_step "ensure the docker network" "could not ensure the docker network" \
    "$SCRIPTS/ensure_docker_network.sh"
run_step "build images" "build failed" \
    "$SCRIPTS/dcprod.sh" "${PROFILE_ARGS[@]}" build
run_step "migrate the database" \
    "migration failed: nothing was started; see the output above (scripts/dcprod.sh run --rm migrate to retry)" \
    "$SCRIPTS/dcprod.sh" "${PROFILE_ARGS[@]}" run --rm migrate
run_step "start the services" "docker compose up failed" \
    "$SCRIPTS/dcprod.sh" "${PROFILE_ARGS[@]}" up -d "${UP_ARGS[@]}"
run_step "wait for health (up to ${DEPLOY_HEALTH_TIMEOUT:-180}s)" \
    "services did not become healthy; the stack is up but not validated" \
    "$SCRIPTS/wait_healthy.sh"
run_step "validate" "validation failed: see the FAIL rows above" \
    "$SCRIPTS/validate_production.sh"
echo "deploy: done"
