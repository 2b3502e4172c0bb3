#!/usr/bin/env bash
# Gather what a GPU machine without a package index needs to train parc_mm there with its own
# torch / nvcc / Python: the wheels of tools/gpu/wheelhouse.txt for its Python (nothing the
# image already has: tools/gpu/image_packages.txt) and the mmcv 2.1.0 sdist (built there with
# CUDA ops by tools/gpu/check.sh). Refuses a wheelhouse above 60 MiB (the carry limit is 64).
#
#   bash tools/gpu/make_wheelhouse.sh [DIR=.whl] [PYVER=3.12]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:-.whl}
PYV=${2:-3.12}
PY=${PARC_PYTHON_FOR_PIP:-python3}
mkdir -p "$DIR"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
mapfile -t reqs < <(grep -vE '^\s*(#|$)' "$HERE/wheelhouse.txt")
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PYV" --implementation cp "${plat[@]}" -d "$DIR" "${reqs[@]}"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
  --no-build-isolation -d "$DIR" mmcv==2.1.0
size=$(du -sm "$DIR" | cut -f1)
ls -la "$DIR"
echo "wheelhouse $DIR: ${size} MiB for Python $PYV"
[ "$size" -le 60 ] || { echo "wheelhouse is ${size} MiB, above the 60 MiB budget" >&2; exit 1; }
