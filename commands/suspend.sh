#!/usr/bin/env bash
# Give a worker of a running search no new job (its current job goes on). The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/suspend.sh mmar_template W2 --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/suspend.sh [MMAR] WORKER [--run-id RUN] [options]" suspend "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML suspend -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
