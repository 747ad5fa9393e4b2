#!/usr/bin/env bash
# Reproduce every table: the five suites of configs/ in turn, each with the given flags
# (e.g. --dry-run, --smoke, --gpus 8 --launcher pytorch; --severities 1 2 3 4 5 for the full
# benchmark instead of the study's severity 1). They share the work directory, so a
# training or evaluation two tables need runs once. Exit status 1 if any suite had failures.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2 || exit 1
status=0
for suite in fixed_feature full_network prime cifar10 adversarial; do
  .venv/bin/python -m robust_transfer.cli reproduce "configs/$suite.yaml" "$@" || status=1
done
exit $status
