#!/usr/bin/env bash
# Test on GPUS processes of this node (torchrun): dist_test.sh CONFIG CHECKPOINT GPUS [flags]
# With --robustness as the first flag, runs test_robustness.py (the corruption grid) instead
# of test.py. NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON (default: python) are read from
# the environment.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
TOOL=test.py
if [[ "${1:-}" == "--robustness" ]]; then
    TOOL=test_robustness.py
    shift
fi
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$GPUS" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    "$(dirname "$0")/$TOOL" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
