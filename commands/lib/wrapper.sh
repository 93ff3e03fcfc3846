# Sourced by the scripts in commands/: which MMAR they act on and which `automl` runs.
#
# The MMAR is the first argument when it is a folder, else $MMAR_ROOT, so the scripts work
# for any MMAR, as Clara's did from inside one (MMAR_ROOT=... commands/automl.sh). What is
# left of the arguments is in ARGS. `automl` is $AUTOML, else the one on PATH, else this
# checkout's package run by $PYTHON (python3).

wrapper_usage() {  # $1: the script's usage line, $2: the automl command whose options follow
    echo "usage: $1"
    echo "  MMAR: the MMAR folder, or set MMAR_ROOT; AUTOML (the automl command) and PYTHON may be set too."
    echo "  the rest goes to \`automl $2\`:"
    echo
}

find_automl() {
    if [ -n "${AUTOML:-}" ]; then
        return
    fi
    if command -v automl >/dev/null 2>&1; then
        AUTOML=automl
    else
        local checkout
        checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
        AUTOML="${PYTHON:-python3} -m automl_cli"
        export PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}"
    fi
}

# $1: usage line, $2: automl command, then the script's own arguments.
# Sets MMAR_ROOT, AUTOML and ARGS; -h/--help prints the usage and automl's help, and exits.
take_mmar() {
    local usage="$1" command="$2"
    shift 2
    find_automl
    if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
        wrapper_usage "$usage" "$command"
        exec $AUTOML $command --help
    fi
    if [ $# -gt 0 ] && [ -d "$1" ]; then
        MMAR_ROOT="$1"
        shift
    fi
    if [ -z "${MMAR_ROOT:-}" ]; then
        echo "automl: error: no MMAR: give its folder as the first argument or set MMAR_ROOT" >&2
        echo "usage: $usage" >&2
        exit 2
    fi
    MMAR_ROOT="$(cd "$MMAR_ROOT" && pwd)"
    echo "MMAR_ROOT set to $MMAR_ROOT" >&2  # stderr: `status --json` output stays JSON
    ARGS=("$@")
}

# The run an admin command acts on: --run-id when given, else $RUN_ID, else "a" (the run_id
# commands/automl.sh starts by default).
with_run_id() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            --run-id|--run-id=*) return ;;
        esac
    done
    ARGS+=(--run-id "${RUN_ID:-a}")
}
