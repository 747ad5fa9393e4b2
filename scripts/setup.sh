#!/usr/bin/env bash
# Idempotent set-up: creates .venv/ in the repository and installs the exact versions of
# requirements.txt, building mmcv 2.1.0 (with its C++ ops, and its CUDA ops on a GPU machine)
# from source once per machine.
#
# mmcv 2.1.0 has no wheel on PyPI and its setup.py hard-codes -std=c++14/-std=c++17, while
# torch 2.14's headers need C++20: we patch the flag in a private copy of the sdist, build a
# wheel with MMCV_WITH_OPS=1 and cache it under $RT_CACHE (default ~/.cache/robust-transfer),
# keyed by torch version, CUDA version and GPU architectures, so a second set-up on the same
# machine only installs it.
#
# Settings (environment):
#   RT_CUDA=1|0          CUDA ops or CPU ops; unset: CUDA when nvcc, a CUDA torch and a GPU are there
#   TORCH_CUDA_ARCH_LIST GPU architectures to compile for; default: the visible GPUs', else 8.0;9.0
#   MAX_JOBS             parallel compiler processes; default: the cores, fewer if memory is short
#   RT_WHEELS=DIR        offline: every package from DIR (scripts/fetch_wheels.sh writes it), no index
#   RT_SYSTEM_TORCH=1    reuse the interpreter's preinstalled torch/torchvision (and whatever else it
#                        has) through a venv with --system-site-packages
#   PYTHON, VENV, RT_CACHE   interpreter (python3.11), venv folder (.venv), cache folder
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
SYSTEM_TORCH=${RT_SYSTEM_TORCH:-0}
if [[ $SYSTEM_TORCH == 1 ]]; then PY=${PYTHON:-python3}; else PY=${PYTHON:-python3.11}; fi
CACHE=${RT_CACHE:-$HOME/.cache/robust-transfer}
WHEELS=$CACHE/wheels
STAMP=$VENV/.setup-stamp
SETTINGS="cuda=${RT_CUDA:-auto} archs=${TORCH_CUDA_ARCH_LIST:-} wheels=${RT_WHEELS:-} system_torch=$SYSTEM_TORCH"
REQ_HASH=$( (sha256sum requirements.txt pyproject.toml setup.py scripts/setup.sh robust_transfer/environment.py \
                       robust_transfer/corruptions/*.c;
             echo "$SETTINGS") | sha256sum | cut -c1-16)
start=$(date +%s)

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# This project, editable; also compiles its native Philox module into the source tree.
install_project() { "${PIP[@]}" install -q --no-deps --no-build-isolation -e .; }

if [[ -f $STAMP && $(cat "$STAMP") == "$REQ_HASH" ]]; then
  # A clean (git clean -x) removes the native module from the source tree: build it again.
  if ! "$VENV/bin/python" -c "import robust_transfer.corruptions._philox_native" 2>/dev/null; then
    echo "[setup] rebuilding the native Philox module"
    install_project
  fi
  echo "[setup] .venv is up to date ($VENV)"; exit 0
fi
mkdir -p "$WHEELS"
SOURCE=()   # where pip takes packages from: the index, or only the wheel folder
if [[ -n ${RT_WHEELS:-} ]]; then
  [[ -d $RT_WHEELS ]] || { echo "[setup] error: RT_WHEELS=$RT_WHEELS is not a folder" >&2; exit 2; }
  RT_WHEELS=$(cd "$RT_WHEELS" && pwd); SOURCE=(--no-index --find-links "$RT_WHEELS")
fi
VENV_FLAGS=(); [[ $SYSTEM_TORCH == 1 ]] && VENV_FLAGS=(--system-site-packages)
# A venv whose creation was interrupted has no pip: create it again.
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$PY" -m venv --clear "${VENV_FLAGS[@]}" "$VENV"
[[ -n ${RT_WHEELS:-} ]] || "${PIP[@]}" install -q --upgrade "pip>=24"
# A preinstalled torch that lives in a venv of its own (as /opt/torch/.venv on some GPU machines):
# --system-site-packages reaches only the base interpreter's packages, so the parent venv's
# site-packages are added after ours (with their .pth files) by a .pth file of ours.
if [[ $SYSTEM_TORCH == 1 ]] && "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  own=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import site; print("\n".join(f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()))' \
    > "$own/_rt_parent_venv.pth"
fi

# Everything except the three packages that must not pull (or build) mmcv on their own, and the
# two that would pull opencv-python beside the pinned headless OpenCV (installed with --no-deps
# below); with a preinstalled torch, also every requirement the interpreter already has.
NO_DEPS='^(mmengine|imagecorruptions)=='
grep -vE '^(mmcv|mmdet|mmsegmentation)==' requirements.txt | grep -vE "$NO_DEPS" > "$CACHE/requirements-base.txt"
grep -E "$NO_DEPS" requirements.txt > "$CACHE/requirements-nodeps.txt"
cp requirements.txt "$CACHE/constraints.txt"
if [[ $SYSTEM_TORCH == 1 ]]; then
  "$VENV/bin/python" - "$CACHE/requirements-base.txt" "$CACHE/requirements-nodeps.txt" "$CACHE/constraints.txt" <<'PYEOF'
import sys
from importlib import metadata

def preinstalled(line):
    name = line.split("==")[0].strip()
    try:
        return bool(name) and not name.startswith("#") and metadata.version(name)
    except metadata.PackageNotFoundError:
        return False

for line in [l for path in sys.argv[1:3] for l in open(path).read().splitlines()]:
    if preinstalled(line):
        print(f"[setup] keeping the preinstalled {line.split('==')[0]} {preinstalled(line)} "
              f"(requirements.txt: {line.strip()})")
for path in sys.argv[1:]:
    lines = open(path).read().splitlines()
    open(path, "w").write("".join(f"{line}\n" for line in lines if not preinstalled(line)))
PYEOF
  "$VENV/bin/python" -c 'import torch' 2>/dev/null || {
    echo "[setup] error: RT_SYSTEM_TORCH=1 but $PY has no torch; unset it to install torch" >&2; exit 2; }
fi
echo "[setup] installing base requirements (torch, numpy, ...)"
"${PIP[@]}" install -q "${SOURCE[@]}" -r "$CACHE/requirements-base.txt" -c "$CACHE/constraints.txt"
if [[ -s $CACHE/requirements-nodeps.txt ]]; then
  "${PIP[@]}" install -q "${SOURCE[@]}" --no-deps -r "$CACHE/requirements-nodeps.txt"
fi

# CPU or CUDA ops, architectures, jobs and cache key: robust_transfer/environment.py decides.
PLAN=$(PYTHONPATH=$ROOT "$VENV/bin/python" -m robust_transfer.environment plan) || exit 2
eval "$PLAN"
echo "[setup] mmcv ops: $RT_OPS ($RT_OPS_REASON)${RT_ARCH_LIST:+, TORCH_CUDA_ARCH_LIST=$RT_ARCH_LIST}"
MMCV_VERSION=$(sed -n 's/^mmcv==//p' requirements.txt)
PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
TORCH_VERSION=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
KEYED=$WHEELS/$RT_CACHE_KEY; mkdir -p "$KEYED"
find_wheel() { ls "$1"/mmcv-"$MMCV_VERSION"-"$PYTAG"-*.whl 2>/dev/null | head -n1 || true; }
MMCV_WHEEL=$(find_wheel "$KEYED")
# The cache's first layout (torch-<version>/, no ops in the key) only ever held CPU builds.
OLD=$WHEELS/torch-${TORCH_VERSION%%+*}
if [[ -z $MMCV_WHEEL && $RT_OPS == cpu && -n $(find_wheel "$OLD") ]]; then
  mv "$(find_wheel "$OLD")" "$KEYED/" && MMCV_WHEEL=$(find_wheel "$KEYED")
fi
if [[ -z $MMCV_WHEEL ]]; then
  echo "[setup] building mmcv $MMCV_VERSION with $RT_OPS ops, MAX_JOBS=$RT_MAX_JOBS (CPU ops: about 20-37 min on 2 cores; CUDA ops: about 6 min on 16 cores; done once per machine)"
  build=$CACHE/build; rm -rf "$build"; mkdir -p "$build"
  if [[ -n ${RT_WHEELS:-} ]]; then
    cp "$RT_WHEELS/mmcv-$MMCV_VERSION.tar.gz" "$build/" 2>/dev/null || {
      echo "[setup] error: $RT_WHEELS has no mmcv-$MMCV_VERSION.tar.gz (scripts/fetch_wheels.sh puts it there)" >&2; exit 2; }
  else
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build"
  fi
  tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
  src=$build/mmcv-$MMCV_VERSION
  # torch >= 2.10 headers require C++20; mmcv hard-codes older standards.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
  grep -q -- '-std=c++20' "$src/setup.py" || { echo "[setup] could not patch mmcv's C++ standard" >&2; exit 1; }
  if [[ $RT_OPS == cuda ]]; then
    ops_env=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$RT_ARCH_LIST")
  else
    # mmcv builds CUDA kernels whenever torch sees a GPU: hide them for a CPU-ops build.
    ops_env=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  fi
  b0=$(date +%s)
  (cd "$src" && env PATH="$VENV/bin:$PATH" MMCV_WITH_OPS=1 MAX_JOBS="$RT_MAX_JOBS" "${ops_env[@]}" \
     "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$build/dist" . )
  built=$(ls "$build"/dist/mmcv-*.whl)
  tagged=$KEYED/$(basename "$built")
  cp "$built" "$tagged.tmp" && mv "$tagged.tmp" "$tagged"
  echo "[setup] mmcv build took $(( $(date +%s) - b0 )) s; cached at $tagged"
  MMCV_WHEEL=$tagged
fi
"${PIP[@]}" install -q --no-deps --force-reinstall "$MMCV_WHEEL"
# mmdet/mmseg do not list mmcv in install_requires; --no-deps on mmcv above keeps pip from
# ever resolving (and building) mmcv again.
"${PIP[@]}" install -q "${SOURCE[@]}" "mmdet==$(sed -n 's/^mmdet==//p' requirements.txt)" \
  "mmsegmentation==$(sed -n 's/^mmsegmentation==//p' requirements.txt)" -c "$CACHE/constraints.txt"
install_project
"$VENV/bin/python" -m robust_transfer.environment check --ops "$RT_OPS" || exit 1
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg; print('[setup] mmcv', mmcv.__version__, 'ops OK ($RT_OPS); mmdet', mmdet.__version__, '; mmseg', mmseg.__version__)"
echo "$REQ_HASH" > "$STAMP"
echo "[setup] done in $(( $(date +%s) - start )) s"
