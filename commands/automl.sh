#!/usr/bin/env bash
# Run an AutoML search on an MMAR, as Clara's automl.sh did. Defaults below; KEY=VALUE
# pairs after the MMAR are passed through and win, e.g.
#   commands/automl.sh mmar_template run_id=test1 workers=0:1 traceout=both
#   MMAR_ROOT=/data/my_mmar commands/automl.sh automlconf=$PWD/config/config_automl_hyperband.json
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/automl.sh [MMAR] [KEY=VALUE]..." run "$@"
exec $AUTOML run -m "$MMAR_ROOT" --set run_id=a workers=0:1 ${ARGS[@]+"${ARGS[@]}"}
