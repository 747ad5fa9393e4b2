#!/usr/bin/env bash
# Fill a folder with every Python package the set-up needs, for a machine that reaches no package
# index (a GPU node behind a firewall). Run it where PyPI is reachable, copy DIR over, then
#   RT_WHEELS=DIR bash scripts/setup.sh           (or: bash scripts/gpu_smoke.sh --wheels DIR)
#
#   bash scripts/fetch_wheels.sh DIR [--python-version 3.12] [--installed FREEZE.txt] [--with-torch]
#
# --python-version   the offline machine's Python (default: 3.11, what requirements.txt was tested on)
# --installed FILE   `python3 -m pip list --format=freeze` of the offline machine: packages it already
#                    has are left out (setup.sh with RT_SYSTEM_TORCH=1 keeps them)
# --with-torch       also torch and torchvision (several GB; by default the machine's own are used)
# The folder also gets mmcv's source archive, which setup.sh builds with the machine's CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ $# -ge 1 && ${1:0:1} != - ]] || { usage >&2; exit 2; }
DIR=$1; shift
PYVER=3.11; INSTALLED=; WITH_TORCH=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --python-version) PYVER=$2; shift 2;;
    --installed) INSTALLED=$2; shift 2;;
    --with-torch) WITH_TORCH=1; shift;;
    -h|--help) usage; exit 0;;
    *) echo "fetch_wheels.sh: unknown argument $1" >&2; usage >&2; exit 2;;
  esac
done
[[ -z $INSTALLED || -f $INSTALLED ]] || { echo "fetch_wheels.sh: no such file: $INSTALLED" >&2; exit 2; }
mkdir -p "$DIR"
PY=${PYTHON:-python3}
skip='^(mmcv)=='; [[ $WITH_TORCH == 1 ]] || skip='^(mmcv|torch|torchvision)=='
reqs=$(mktemp); trap 'rm -f "$reqs"' EXIT
# mmengine and imagecorruptions come without their dependencies (they would add opencv-python
# beside the pinned headless OpenCV; setup.sh installs them with --no-deps too).
grep -vE "$skip" requirements.txt | grep -vE '^\s*(#|$)' | grep -vE '^(mmengine|imagecorruptions)==' > "$reqs"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
echo "[fetch_wheels] Python $PYVER wheels into $DIR"
"$PY" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${platforms[@]}" -r "$reqs" -d "$DIR"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${platforms[@]}" $(grep -E '^(mmengine|imagecorruptions)==' requirements.txt) -d "$DIR"
# pip reads an sdist's metadata even to download it, and mmcv's setup.py needs pkg_resources
# and bdist_wheel to do so: a throwaway venv with the pinned setuptools and wheel has both.
tools=$(mktemp -d); trap 'rm -rf "$reqs" "$tools"' EXIT
"$PY" -m venv "$tools"
"$tools/bin/python" -m pip install -q --disable-pip-version-check \
  "$(grep '^setuptools==' requirements.txt)" "$(grep '^wheel==' requirements.txt)"
"$tools/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
  --no-build-isolation "mmcv==$(sed -n 's/^mmcv==//p' requirements.txt)" -d "$DIR"
if [[ -n $INSTALLED ]]; then
  # Drop what the machine has: a wheel file's project name, normalised as pip does.
  "$PY" - "$DIR" "$INSTALLED" <<'PYEOF'
import pathlib, re, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
have = {norm(line.split("==")[0]) for line in open(sys.argv[2]) if "==" in line}
for wheel in pathlib.Path(sys.argv[1]).glob("*.whl"):
    if norm(wheel.name.split("-")[0]) in have:
        wheel.unlink()
        print(f"[fetch_wheels] the machine has {wheel.name.split('-')[0]}: left out")
PYEOF
fi
echo "[fetch_wheels] $(ls "$DIR" | wc -l) files, $(du -sh "$DIR" | cut -f1) in $DIR"
