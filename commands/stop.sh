#!/usr/bin/env bash
# Finish a running search gracefully (--wait: return when it has). The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/stop.sh mmar_template --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/stop.sh [MMAR] [--run-id RUN] [options]" stop "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML stop -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
