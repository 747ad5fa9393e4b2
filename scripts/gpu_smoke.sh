#!/usr/bin/env bash
# The GPU smoke test (issue 12): set up an environment, then run `python -m robust_transfer.gpu_smoke`
# (train the tiny detection / segmentation / classification models on the GPU, evaluate them
# under corruptions on the GPU and on the CPU, compare, print timings; non-zero exit on failure).
#
#   bash scripts/gpu_smoke.sh                          # set-up into .venv (scripts/setup.sh), then run
#   bash scripts/gpu_smoke.sh --wheels DIR             # offline: every package from DIR, the torch
#                                                      # already installed reused, venv .venv-gpu
#   bash scripts/gpu_smoke.sh --out DIR --iters 20     # other arguments go to the module (--help)
#
# Without a visible NVIDIA GPU it prints that it skipped and exits 0, before any set-up.
# Environment: PYTHON (with --wheels default python3, else setup.sh's python3.11) and VENV
# (default .venv, or .venv-gpu with --wheels) go to scripts/setup.sh, which also reads RT_CUDA,
# RT_CACHE and its other settings.
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    cat <<'EOF'

Options:
  --wheels DIR   take every Python package from DIR (pip --no-index; mmcv's sdist too) and reuse
                 the torch/torchvision installed for $PYTHON (RT_SYSTEM_TORCH=1); venv .venv-gpu
  --out DIR      output folder of the smoke (default outputs/gpu_smoke)
  --dry-run      print the set-up and smoke commands instead of running them (after the GPU check)
  -h, --help     this help; `python -m robust_transfer.gpu_smoke --help` lists the module's flags
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=""
OUT="$ROOT/outputs/gpu_smoke"
DRY_RUN=0
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheels) [[ $# -ge 2 ]] || { echo "gpu_smoke.sh: --wheels needs a folder" >&2; exit 2; }
                  WHEELS=$2; shift 2 ;;
        --wheels=*) WHEELS=${1#--wheels=}; shift ;;
        --out) [[ $# -ge 2 ]] || { echo "gpu_smoke.sh: --out needs a folder" >&2; exit 2; }
               OUT=$2; shift 2 ;;
        --out=*) OUT=${1#--out=}; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) EXTRA+=("$1"); shift ;;
    esac
done
if [[ -n "$WHEELS" && ! -d "$WHEELS" ]]; then
    echo "gpu_smoke.sh: --wheels $WHEELS is not a folder" >&2
    exit 2
fi
# paths given by the caller are relative to the caller's folder; the rest runs in the repository
[[ -z "$WHEELS" ]] || WHEELS=$(cd "$WHEELS" && pwd)
[[ "$OUT" == /* ]] || OUT="$PWD/$OUT"
cd "$ROOT"

START=$(date +%s)
trap 'echo "gpu_smoke.sh: total wall time $(( $(date +%s) - START )) s"' EXIT

# A GPU is visible when nvidia-smi lists one, or when the interpreter's torch (if it has one)
# sees CUDA. Checked before the set-up, so a machine without a GPU builds nothing.
CHECK_PYTHON=${PYTHON:-python3}
gpu_visible() {
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
        return 0
    fi
    "$CHECK_PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1
}
if ! gpu_visible; then
    echo "gpu smoke: skipped: no NVIDIA GPU visible (nvidia-smi lists none and $CHECK_PYTHON's torch, if any, sees no CUDA)"
    trap - EXIT
    exit 0
fi

if [[ -n "$WHEELS" ]]; then
    VENV=${VENV:-.venv-gpu}
    SETUP=(env RT_WHEELS="$WHEELS" RT_SYSTEM_TORCH=1 PYTHON="${PYTHON:-python3}"
           VENV="$VENV" bash scripts/setup.sh)
else  # the normal set-up (its own defaults: python3.11, .venv; PYTHON and VENV pass through)
    VENV=${VENV:-.venv}
    SETUP=(env VENV="$VENV" bash scripts/setup.sh)
fi
SMOKE=("$VENV/bin/python" -m robust_transfer.gpu_smoke --out "$OUT" ${EXTRA[@]+"${EXTRA[@]}"})
if [[ $DRY_RUN == 1 ]]; then
    echo "${SETUP[*]}"
    echo "${SMOKE[*]}"
    exit 0
fi
SETUP_START=$(date +%s)
"${SETUP[@]}"
echo "gpu_smoke.sh: set-up took $(( $(date +%s) - SETUP_START )) s"
"${SMOKE[@]}"
