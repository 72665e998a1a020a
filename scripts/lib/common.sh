# shellcheck shell=bash
# Sourced by the scripts in scripts/: their usage text, argument handling and where they run from.

# The header comment of the running script (from line 2 to `set -euo pipefail`) is its usage text.
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

# -h/--help prints the usage and exits 0; anything else is left to the script.
handle_help() {
    case "${1:-}" in
        -h | --help)
            usage
            exit 0
            ;;
    esac
}

# For scripts that take no arguments: -h/--help, or exit 2 naming the unexpected one.
no_arguments() {
    handle_help "$@"
    if [[ $# -gt 0 ]]; then
        echo "$(basename "$0"): unknown argument: $1 (see -h)" >&2
        exit 2
    fi
}

# dcprod.sh runs from the repository root: a relative env file is the caller's, so make it absolute.
absolute_env_file() {
    if [[ -n "${PROSAAS_ENV_FILE:-}" && "$PROSAAS_ENV_FILE" != /* ]]; then
        export PROSAAS_ENV_FILE="$PWD/$PROSAAS_ENV_FILE"
    fi
}

# The repository root (the parent of scripts/).
PROSAAS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PROSAAS_ROOT
