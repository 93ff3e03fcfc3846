#!/usr/bin/env bash
# Check an MMAR's config files and print its search space, e.g.
#   commands/validate.sh mmar_template --automlconf "$PWD/config/config_automl_bohb.json"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/wrapper.sh"
take_mmar "commands/validate.sh [MMAR] [automl validate options]" validate "$@"
exec $AUTOML validate -m "$MMAR_ROOT" ${ARGS[@]+"${ARGS[@]}"}
