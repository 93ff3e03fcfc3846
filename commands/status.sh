#!/usr/bin/env bash
# Show a run's jobs and best result (--json, --watch). The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/status.sh mmar_template --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/status.sh [MMAR] [--run-id RUN] [options]" status "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML status -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
