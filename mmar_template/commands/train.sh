#!/usr/bin/env bash
# Train this MMAR once with its config (no search). Extra arguments pass through, e.g.
#   commands/train.sh --epochs 2
set -euo pipefail
my_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MMAR_ROOT="${MMAR_ROOT:-$(dirname "$my_dir")}"
echo "MMAR_ROOT set to $MMAR_ROOT"
AUTOML="${AUTOML:-automl}"
exec $AUTOML train -m "$MMAR_ROOT" "$@"
