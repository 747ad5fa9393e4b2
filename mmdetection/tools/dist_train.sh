#!/usr/bin/env bash
# Distributed training with torchrun: one process per GPU (gloo on CPU-only machines).
#   bash mmdetection/tools/dist_train.sh CONFIG NPROC [ARGS...]
# Environment: PYTHON (default python), PORT (29500), NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 CONFIG NPROC [ARGS...]" >&2; exit 2
fi
CONFIG=$1; NPROC=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
  "$HERE/train.py" "$CONFIG" --launcher pytorch "$@"
