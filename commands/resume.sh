#!/usr/bin/env bash
# Give a suspended worker of a running search jobs again. The run is --run-id, else $RUN_ID, else "a" (commands/automl.sh's default), e.g.
#   commands/resume.sh mmar_template W2 --run-id test1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/resume.sh [MMAR] WORKER [--run-id RUN] [options]" resume "$@"
with_run_id ${ARGS[@]+"${ARGS[@]}"}
exec $AUTOML resume -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
