#!/usr/bin/env bash
# One row per job of a run: start, end, folder, score, worker. The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/summary.sh mmar_template --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/summary.sh [MMAR] [--run-id RUN] [options]" summary "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML summary -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
