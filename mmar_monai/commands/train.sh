#!/usr/bin/env bash
# Train this MMAR once with its config (no search). Makes the data set first when
# data/dataset_0.json is missing. Extra arguments pass through, e.g.
#   commands/train.sh --epochs 2
#   commands/train.sh --trainconf trn_autoML_Enum.json
set -euo pipefail
my_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MMAR_ROOT="${MMAR_ROOT:-$(dirname "$my_dir")}"
echo "MMAR_ROOT set to $MMAR_ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -f "$MMAR_ROOT/data/dataset_0.json" ]; then
    "$PYTHON" "$MMAR_ROOT/custom/make_data.py" --out "$MMAR_ROOT/data"
fi
AUTOML="${AUTOML:-automl}"
exec $AUTOML train -m "$MMAR_ROOT" "$@"
