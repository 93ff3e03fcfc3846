#!/usr/bin/env bash
# Show each worker of a run: its GPUs, state and current job. The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/workers.sh mmar_template --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/workers.sh [MMAR] [--run-id RUN] [options]" workers "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML workers -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
