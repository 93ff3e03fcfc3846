#!/usr/bin/env bash
# On a machine with NVIDIA GPUs: do a search's jobs train on CUDA, each on its worker's GPU?
# Runs a short search with the template's own trainer and one with MONAI's engines
# (mmar_monai), a worker spec naming a GPU the machine lacks, and one MONAI training on the
# GPU and on the CPU for a time ratio. Prints PASS/FAIL per check; exit 1 if any failed.
#   scripts/gpu_check.sh [WORKDIR]        (needs `automl` on PATH, installed with [monai])
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
failed=0
check() {  # check NAME COMMAND...: PASS when COMMAND succeeds
    local name="$1"; shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name"; failed=1; fi
}
# every job folder's train.log names CUDA and the GPU its worker got in trace.log
jobs_on_their_gpus() {
    local run="$1" seen=0 job worker gpus
    while read -r job worker gpus; do
        seen=$((seen + 1))
        grep -q "training on cuda (.*CUDA_VISIBLE_DEVICES=$gpus)" "$run/$job/train.log" || {
            echo "  $job ($worker, GPUs $gpus): $(grep -m1 'training on' "$run/$job/train.log")"; return 1; }
        echo "  $job on $worker: $(grep -m1 -o 'training on cuda ([^)]*)' "$run/$job/train.log")"
    done < <(sed -n 's/.*job \(W[0-9_J]*\) started on \(W[0-9]*\) (GPUs \([0-9,]*\)).*/\1 \2 \3/p' "$run/trace.log")
    [ "$seen" -gt 0 ]
}

nvidia-smi -L || { echo "FAIL nvidia-smi -L: no GPU to check"; exit 1; }
n_gpus=$(nvidia-smi -L | grep -c '^GPU ')
spec="0:0"   # two workers sharing GPU 0 on a one-GPU machine, else one worker per GPU
[ "$n_gpus" -ge 2 ] && spec="0:1"
unset CUDA_VISIBLE_DEVICES
(while sleep 1; do date +%T; nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader; done) \
    >"$work/gpu-processes.log" 2>&1 &
watcher=$!
trap 'kill $watcher 2>/dev/null' EXIT

cp -r "$repo/mmar_template" "$work/template"
automl run -m "$work/template" --run-id gpu --workers "$spec" --set automl_max_recommendations=4 \
    >"$work/template.out" 2>&1
check "template search on --workers $spec exits 0" [ $? -eq 0 ]
check "template jobs trained on CUDA, each on its worker's GPU" jobs_on_their_gpus "$work/template/automl/gpu"
tail -n 4 "$work/template.out"

if [ "$n_gpus" -ge 2 ]; then  # an inherited mask: the tool's GPU 0 is the machine's GPU 1
    CUDA_VISIBLE_DEVICES=1 automl run -m "$work/template" --run-id masked --workers 0 \
        --set automl_max_recommendations=1 >"$work/masked.out" 2>&1
    check "CUDA_VISIBLE_DEVICES=1 --workers 0: the job gets GPU 1" \
        grep -q "CUDA_VISIBLE_DEVICES=1)" "$work"/template/automl/masked/W*/train.log
fi

automl run -m "$work/template" --run-id missing --workers "0:$n_gpus" >"$work/missing.out" 2>&1
rc=$?
check "--workers 0:$n_gpus (a GPU the machine lacks) exits 2 in one line: $(tail -n 1 "$work/missing.out")" \
    [ $rc -eq 2 ]

cp -r "$repo/mmar_monai" "$work/monai"
"$work/monai/commands/automl.sh" run_id=gpu workers="$spec" >"$work/monai.out" 2>&1
check "MONAI search (mmar_monai) on --workers $spec exits 0" [ $? -eq 0 ]
check "MONAI jobs trained on CUDA, each on its worker's GPU" jobs_on_their_gpus "$work/monai/automl/gpu"
tail -n 4 "$work/monai.out"

for device in gpu cpu; do  # one MONAI training each way, same config, for the ratio
    mask=0; [ "$device" = cpu ] && mask=""
    # a copy each: `automl train` resumes from the checkpoint an earlier training left in models/
    cp -r "$repo/mmar_monai" "$work/train-$device" && cp -r "$work/monai/data" "$work/train-$device/"
    start=$(date +%s%N)
    CUDA_VISIBLE_DEVICES=$mask automl train -m "$work/train-$device" --epochs 4 >"$work/train-$device.out" 2>&1
    check "automl train on the $device exits 0" [ $? -eq 0 ]
    echo "  $device: $(( ($(date +%s%N) - start) / 1000000 )) ms for 4 epochs; $(grep -m1 -o 'training on [a-z]* ([^)]*)' "$work/train-$device.out")"
done

kill $watcher 2>/dev/null
echo "GPU processes seen while jobs ran: $(grep -c MiB "$work/gpu-processes.log") samples, up to" \
     "$(grep -o '[0-9]* MiB' "$work/gpu-processes.log" | sort -n | tail -n 1)"
exit $failed
