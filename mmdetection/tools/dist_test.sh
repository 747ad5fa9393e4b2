#!/usr/bin/env bash
# Distributed test with torchrun: one process per GPU (or per CPU slot: gloo is used without CUDA).
#   bash mmdetection/tools/dist_test.sh CONFIG CHECKPOINT NPROC [ARGS...]                 # tools/test.py
#   bash mmdetection/tools/dist_test.sh CONFIG CHECKPOINT NPROC --robustness [ARGS...]    # tools/test_robustness.py
# Environment: PYTHON (default python), PORT (29500), NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [--robustness] [ARGS...]" >&2; exit 2
fi
CONFIG=$1; CHECKPOINT=$2; NPROC=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$HERE/test.py
ARGS=()
for arg in "$@"; do
  if [[ $arg == --robustness ]]; then SCRIPT=$HERE/test_robustness.py; else ARGS+=("$arg"); fi
done
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
  "$SCRIPT" "$CONFIG" "$CHECKPOINT" --launcher pytorch ${ARGS[@]+"${ARGS[@]}"}
