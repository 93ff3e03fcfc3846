#!/usr/bin/env bash
# Run an AutoML search on this MMAR, as Clara's automl.sh did. Makes the data set first
# when data/dataset_0.json is missing. Defaults below; anything after the script name is
# passed through and wins, e.g.
#   commands/automl.sh run_id=lr1 trainconf=trn_autoML_LR_LP.json workers=0:1 traceout=both
set -euo pipefail
my_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MMAR_ROOT="${MMAR_ROOT:-$(dirname "$my_dir")}"
echo "MMAR_ROOT set to $MMAR_ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -f "$MMAR_ROOT/data/dataset_0.json" ]; then
    "$PYTHON" "$MMAR_ROOT/custom/make_data.py" --out "$MMAR_ROOT/data"
fi
AUTOML="${AUTOML:-automl}"
exec $AUTOML run -m "$MMAR_ROOT" --set run_id=a workers=0:1 "$@"
