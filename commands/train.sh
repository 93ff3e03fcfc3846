#!/usr/bin/env bash
# Train an MMAR once with its config (no search). Options after the MMAR pass through, e.g.
#   commands/train.sh mmar_template --epochs 2
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/train.sh [MMAR] [automl train options]" train "$@"
exec $AUTOML train -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
