#!/usr/bin/env bash
# Test on a Slurm cluster: srun starts one task per GPU, mmengine reads the SLURM_* variables.
#   bash mmdetection/tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [--robustness] [ARGS...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), TIME_LIMIT (srun --time, default
# 2-00:00:00), SRUN_ARGS (extra srun flags), PYTHON.
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [--robustness] [ARGS...]" >&2; exit 2
fi
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; CHECKPOINT=$4; shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$HERE/test.py
ARGS=()
for arg in "$@"; do
  if [[ $arg == --robustness ]]; then SCRIPT=$HERE/test_robustness.py; else ARGS+=("$arg"); fi
done
GPUS=${GPUS:-8}
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres="gpu:${GPUS_PER_NODE:-8}" --ntasks="$GPUS" \
  --ntasks-per-node="${GPUS_PER_NODE:-8}" --cpus-per-task="${CPUS_PER_TASK:-5}" --time="${TIME_LIMIT:-2-00:00:00}" \
  --kill-on-bad-exit=1 \
  ${SRUN_ARGS:-} \
  "${PYTHON:-python}" -u "$SCRIPT" "$CONFIG" "$CHECKPOINT" --launcher slurm ${ARGS[@]+"${ARGS[@]}"}
