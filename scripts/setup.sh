#!/usr/bin/env bash
# Idempotent set-up: creates .venv/ in the repository and installs the exact versions of
# requirements.txt, building mmcv 2.1.0 (with its C++ ops) from source once per machine.
#
# mmcv 2.1.0 has no wheel on PyPI and its setup.py hard-codes -std=c++14/-std=c++17, while
# torch 2.14's headers need C++20: we patch the flag in a private copy of the sdist, build a
# wheel with MMCV_WITH_OPS=1 and cache it under $RT_CACHE (default ~/.cache/robust-transfer),
# so a second set-up on the same machine only installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
CACHE=${RT_CACHE:-$HOME/.cache/robust-transfer}
WHEELS=$CACHE/wheels
STAMP=$VENV/.setup-stamp
REQ_HASH=$(sha256sum requirements.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
start=$(date +%s)

if [[ -f $STAMP && $(cat "$STAMP") == "$REQ_HASH" ]]; then
  echo "[setup] .venv is up to date ($VENV)"; exit 0
fi
mkdir -p "$WHEELS"
# A venv whose creation was interrupted has no pip: create it again.
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$PY" -m venv --clear "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip>=24"

# Everything except the three packages that must not pull (or build) mmcv on their own.
grep -vE '^(mmcv|mmdet|mmsegmentation)==' requirements.txt > "$CACHE/requirements-base.txt"
echo "[setup] installing base requirements (torch, numpy, ...)"
"${PIP[@]}" install -q -r "$CACHE/requirements-base.txt"

MMCV_VERSION=$(sed -n 's/^mmcv==//p' requirements.txt)
TORCH_VERSION=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
# The ops link against torch's C++ ABI: one cached wheel per torch version.
WHEELS=$WHEELS/torch-$TORCH_VERSION; mkdir -p "$WHEELS"
MMCV_WHEEL=$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [[ -z $MMCV_WHEEL ]]; then
  echo "[setup] building mmcv $MMCV_VERSION with C++ ops (about 37 min on 2 cores; done once per machine)"
  build=$CACHE/build; rm -rf "$build"; mkdir -p "$build"
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build"
  tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
  src=$build/mmcv-$MMCV_VERSION
  # torch >= 2.10 headers require C++20; mmcv hard-codes older standards.
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
  grep -q -- '-std=c++20' "$src/setup.py" || { echo "[setup] could not patch mmcv's C++ standard" >&2; exit 1; }
  b0=$(date +%s)
  (cd "$src" && PATH="$VENV/bin:$PATH" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
     "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$build/dist" . )
  built=$(ls "$build"/dist/mmcv-*.whl)
  tagged=$WHEELS/$(basename "$built")
  cp "$built" "$tagged.tmp" && mv "$tagged.tmp" "$tagged"
  echo "[setup] mmcv build took $(( $(date +%s) - b0 )) s; cached at $tagged"
  MMCV_WHEEL=$tagged
fi
"${PIP[@]}" install -q --no-deps --force-reinstall "$MMCV_WHEEL"
# mmdet/mmseg do not list mmcv in install_requires; --no-deps on mmcv above keeps pip from
# ever resolving (and building) mmcv again.
"${PIP[@]}" install -q "mmdet==$(sed -n 's/^mmdet==//p' requirements.txt)" \
  "mmsegmentation==$(sed -n 's/^mmsegmentation==//p' requirements.txt)" -c requirements.txt
"${PIP[@]}" install -q --no-deps -e .
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg; print('[setup] mmcv', mmcv.__version__, 'ops OK; mmdet', mmdet.__version__, '; mmseg', mmseg.__version__)"
echo "$REQ_HASH" > "$STAMP"
echo "[setup] done in $(( $(date +%s) - start )) s"
