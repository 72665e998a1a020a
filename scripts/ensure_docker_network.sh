#!/usr/bin/env bash
# ensure_docker_network.sh — make sure the external Docker network of the stack exists (idempotent).
#
# Usage: scripts/ensure_docker_network.sh [NETWORK]
#
# Creates the network with `docker network create` only when `docker network inspect` says it does not
# exist; running it again changes nothing. Prints what it did.
#
# Environment:
#   PROSAAS_NETWORK  network name when no argument is given (default: prosaas-net)
#
# Exit status: 0 when the network exists afterwards, 1 when it could not be created.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

handle_help "$@"

NETWORK="${1:-${PROSAAS_NETWORK:-prosaas-net}}"

if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    echo "network $NETWORK: already exists, nothing to do"
    exit 0
fi

if err="$(docker network create --driver bridge "$NETWORK" 2>&1 >/dev/null)"; then
    echo "network $NETWORK: created"
    exit 0
fi

# Another run may have created it between our inspect and create: that is success too.
if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    echo "network $NETWORK: already exists (created concurrently), nothing to do"
    exit 0
fi
echo "network $NETWORK: could not be created: ${err:-docker network create failed}" >&2
exit 1
