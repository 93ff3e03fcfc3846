#!/usr/bin/env bash
# Run an AutoML search on this MMAR, as Clara's automl.sh did. Defaults below; anything
# after the script name is passed through and wins, e.g.
#   commands/automl.sh run_id=test1 workers=0:1 traceout=both
set -euo pipefail
my_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MMAR_ROOT="${MMAR_ROOT:-$(dirname "$my_dir")}"
echo "MMAR_ROOT set to $MMAR_ROOT"
AUTOML="${AUTOML:-automl}"
exec $AUTOML run -m "$MMAR_ROOT" --set run_id=a workers=0:1 "$@"
