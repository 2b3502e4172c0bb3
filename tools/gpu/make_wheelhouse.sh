#!/usr/bin/env bash
# Gather what a GPU machine without a package index needs to train parc_mm there with its own
# torch / nvcc / Python: the pure-Python OpenMMLab stack as wheels for its Python, and the
# mmcv 2.1.0 sdist (built there with CUDA ops by tools/gpu/check.sh).
#
#   bash tools/gpu/make_wheelhouse.sh [DIR=.whl] [PYVER=3.12]
set -euo pipefail
DIR=${1:-.whl}
PYV=${2:-3.12}
mkdir -p "$DIR"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp "${plat[@]}" \
  -d "$DIR" mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 \
  addict yapf termcolor rich markdown-it-py mdurl pygments platformdirs tomli pycocotools \
  shapely terminaltables ftfy regex wcwidth einops modelindex opencv-python-headless 'numpy<2.4' \
  matplotlib scipy six tabulate
pip download -q --no-deps --no-binary :all: -d "$DIR" mmcv==2.1.0
ls -la "$DIR"
