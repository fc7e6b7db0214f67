#!/usr/bin/env bash
# GPU readiness check: one script, under 10 minutes on a GPU machine.
#
#   bash benchmarks/gpu_check.sh [--device gpu|cpu] [--data DIR] [--max-events N]
#
# 1. The device-independent tests (model, losses, optimizer, evaluation, export: each
#    compares against an independent reference) with TensorFlow placing ops on the device.
#    TF32 is switched off for them (NVIDIA_TF32_OVERRIDE=0): the references are exact to
#    float32, TF32 matmuls keep 10 mantissa bits.
# 2. One training epoch for the RSC15 and RetailRocket shapes at their published batch sizes
#    (32, 80) and at 256, on yoochoose1_64: one table of events/s, mini-batches/s,
#    Recall@20 and MRR@20 (benchmarks/train_speed.py; TF32 as TensorFlow defaults).
#
# 3. Data-parallel overhead (issue 20): one epoch of the RSC15 shape on one device, on one
#    replica under MirroredStrategy (same device), and on 2 devices where the machine has 2
#    GPUs (benchmarks/distributed.py speed; the ratio column is the figure to report).
#
# --device cpu is the dry run that the test suite runs: CUDA hidden, a few tests, the same
# benchmarks run on the first --max-events clicks (default 500; 100,000 in step 3 on a GPU),
# and step 3 takes 2 logical CPU devices for the 2-GPU run, so every line of this script is
# exercised on a machine without a GPU.
set -euo pipefail

device=gpu
data="$(cd "$(dirname "$0")/../.." && pwd)/shared/data/yoochoose1_64"
max_events=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --max-events) max_events="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --device gpu|cpu, --data DIR, --max-events N)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's tf_gru4rec, also for scripts
python="${PYTHON:-python}"

tests=(tests/test_model.py tests/test_losses.py tests/test_optimizers.py tests/test_evaluation.py tests/test_export.py)
if [ "$device" = cpu ]; then
  export CUDA_VISIBLE_DEVICES=""
  select=(-k "xe-logq-shared-0.3 or test_sum_over_active_rows or repeated_rows or tie_modes_on_a_tiny or step_chain_equals_keras")
  max_events="${max_events:-500}"
  replica_runs=("1 device" "1 replica (MirroredStrategy)" "2 devices (MirroredStrategy)")
elif [ "$device" = gpu ]; then
  select=()
  replica_runs=("1 device" "1 replica (MirroredStrategy)")
  gpus=$("$python" -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null | tail -1)
  [ "${gpus:-0}" -ge 2 ] && replica_runs+=("2 devices (MirroredStrategy)")
  "$python" -c 'import sys, tensorflow as tf; gpus = tf.config.list_physical_devices("GPU"); print("GPUs:", gpus); sys.exit(0 if gpus else 1)' \
    || { echo "gpu_check.sh: TensorFlow sees no GPU (use --device cpu for the dry run)" >&2; exit 1; }
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "gpu_check.sh: --device is gpu or cpu, not $device" >&2; exit 2
fi

echo "== 1. device-independent tests on $device (TF32 off)"
start=$SECONDS
NVIDIA_TF32_OVERRIDE=0 "$python" -m pytest -q -m "not slow" -p no:cacheprovider "${tests[@]}" "${select[@]}"
echo "   tests took $((SECONDS - start)) s"

echo "== 2. one training epoch, RSC15 and RetailRocket shapes, published batch sizes and 256"
start=$SECONDS
"$python" benchmarks/train_speed.py --data "$data" --epochs 1 --configs rsc15-xe rr-bprmax \
  --batch-sizes published 256 ${max_events:+--max-events "$max_events"}
echo "   benchmark took $((SECONDS - start)) s"

echo "== 3. data-parallel overhead: one device, one replica under MirroredStrategy$([ ${#replica_runs[@]} -gt 2 ] && echo ', 2 devices')"
start=$SECONDS
"$python" benchmarks/distributed.py speed --data "$data" --events "${max_events:-100000}" --runs "${replica_runs[@]}"
echo "   benchmark took $((SECONDS - start)) s"
