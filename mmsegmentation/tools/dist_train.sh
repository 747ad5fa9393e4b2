#!/usr/bin/env bash
# Train on GPUS processes of this node (torchrun): dist_train.sh CONFIG GPUS [train.py flags]
# NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON (default: python) are read from the environment.
set -euo pipefail
CONFIG=$1
GPUS=$2
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$GPUS" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
