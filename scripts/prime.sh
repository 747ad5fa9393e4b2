#!/usr/bin/env bash
# Reproduce the PRIME-during-transfer table: detection, segmentation, CIFAR-10 with PRIME on the training images.
# Convert the published backbones, train (or --checkpoint-dir), evaluate, report; see
# configs/prime.yaml and docs/reproduce.md. Every flag goes to `robust-transfer reproduce`:
#   bash scripts/prime.sh --dry-run                      # print every command
#   bash scripts/prime.sh --smoke                        # the same pipeline on synthetic data, CPU
#   bash scripts/prime.sh --gpus 8 --launcher pytorch    # or --launcher slurm --partition P
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/python -m robust_transfer.cli reproduce configs/prime.yaml "$@"
