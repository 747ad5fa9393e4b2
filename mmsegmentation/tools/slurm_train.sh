#!/usr/bin/env bash
# Train under Slurm: slurm_train.sh PARTITION JOB_NAME CONFIG [train.py flags]
# GPUS (default 4), GPUS_PER_NODE (4), CPUS_PER_TASK (5), TIME_LIMIT (srun --time, default
# 2-00:00:00), SRUN_ARGS and PYTHON (python) are read from the environment.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --time="${TIME_LIMIT:-2-00:00:00}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$(dirname "$0")/train.py" "$CONFIG" --launcher=slurm "${@:4}"
