#!/usr/bin/env bash
# Reproduce the fixed-feature transfer table (backbone frozen): detection, segmentation, CIFAR-10.
# Convert the published backbones, train (or --checkpoint-dir), evaluate, report; see
# configs/fixed_feature.yaml and docs/reproduce.md. Every flag goes to `robust-transfer reproduce`:
#   bash scripts/fixed_feature.sh --dry-run                      # print every command
#   bash scripts/fixed_feature.sh --severities 1 2 3 4 5      # the full benchmark (default: the study's severity 1)
#   bash scripts/fixed_feature.sh --smoke                        # the same pipeline on synthetic data, CPU
#   bash scripts/fixed_feature.sh --gpus 8 --launcher pytorch    # the node's 8 GPUs: one-GPU jobs side by side,
#                                    # trainings torchrun over --gpus-per-job (default all 8)
#   bash scripts/fixed_feature.sh --launcher slurm --partition P [--gpus 8 --cpus-per-task 5 --time 2-00:00:00]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/python -m robust_transfer.cli reproduce configs/fixed_feature.yaml "$@"
