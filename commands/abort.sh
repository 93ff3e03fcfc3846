#!/usr/bin/env bash
# Stop one job of a running search: the one a worker runs (W1) or one by name (W1_1_J7). The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/abort.sh mmar_template W1 --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/abort.sh [MMAR] WORKER|JOB [--run-id RUN] [options]" abort "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML abort -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
