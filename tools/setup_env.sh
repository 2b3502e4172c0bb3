#!/usr/bin/env bash
# One-command environment for parc_mm: a virtualenv with the pinned OpenMMLab 2.x stack.
#
#   tools/setup_env.sh                 # creates ./.venv (or $PARC_VENV)
#   PARC_STACK=onedl tools/setup_env.sh   # the maintained OneDL fork instead (same imports)
#
# Variables:
#   PARC_STACK       openmmlab (default: mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmseg 1.2.2,
#                    mmpretrain 1.2.0) or onedl (onedl-mmengine 0.10.12, onedl-mmcv 2.3.6,
#                    onedl-mmdetection 3.5.1, onedl-mmsegmentation 1.4.2, onedl-mmpretrain 1.3.6);
#                    pins in requirements/constraints[-onedl].txt
#   PARC_VENV        venv folder (default: <repo>/.venv)
#   PARC_PYTHON      interpreter that creates the venv (default: python3; must be CPython 3.11)
#   PARC_TORCH       torch/torchvision pip specs (default: "torch==2.14.1 torchvision==0.29.1",
#                    a matched pair; GPU users may pick e.g. "torch==2.5.1 torchvision==0.20.1")
#   PARC_TORCH_INDEX extra index url for PARC_TORCH (e.g. a CUDA wheel index); empty = default
#   PARC_CACHE       cache folder for the mmcv wheel (default: ~/.cache/parc_mm)
#   MMCV_CUDA        1 / 0 = build mmcv's CUDA ops or not. Default: CUDA ops when a GPU, a CUDA
#                    torch and a matching nvcc (system, or NVIDIA's compiler wheels) are found
#
# Safe to re-run: every step is skipped when already satisfied. The mmcv wheel (compiled ops,
# ~12 min on 2 cores) is built once and cached under $PARC_CACHE keyed by python+torch version.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PARC_VENV:-$ROOT/.venv}
PY=${PARC_PYTHON:-python3}
TORCH_SPEC=${PARC_TORCH:-torch==2.14.1 torchvision==0.29.1}
CACHE=${PARC_CACHE:-$HOME/.cache/parc_mm}
STACK=${PARC_STACK:-openmmlab}
case $STACK in
  openmmlab) CONSTRAINTS=$ROOT/requirements/constraints.txt; MMCV_DIST=mmcv; EXTRAS=all ;;
  onedl) CONSTRAINTS=$ROOT/requirements/constraints-onedl.txt; MMCV_DIST=onedl-mmcv; EXTRAS=onedl-all ;;
  *) echo "[setup_env] ERROR: PARC_STACK must be openmmlab or onedl, got '$STACK'" >&2; exit 2 ;;
esac
# the pinned mmcv release of the stack; its sdist / wheel files spell the name with '_'
MMCV_VER=$(sed -n "s/^$MMCV_DIST==\([0-9.]*\)$/\1/p" "$CONSTRAINTS")
MMCV_FILE=${MMCV_DIST//-/_}-$MMCV_VER
T0=$(date +%s)

say() { printf '[setup_env %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "[setup_env] FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' EXIT

"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || die "$PY is not CPython 3.11 (mmcv 2.1.0 is built and tested here for 3.11). Set PARC_PYTHON."

if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  "$PY" -m venv "$VENV" || die "python -m venv failed (Debian: apt-get install python3-venv)"
fi
VPY=$VENV/bin/python
PIP=("$VPY" -m pip --disable-pip-version-check)
export PATH=$VENV/bin:$PATH

say "build tools (setuptools<81 keeps pkg_resources for mmcv/mmengine; ninja for a parallel build)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "setuptools" wheel ninja "numpy" packaging

say "torch: $TORCH_SPEC"
idx=()
[ -n "${PARC_TORCH_INDEX:-}" ] && idx=(--extra-index-url "$PARC_TORCH_INDEX")
# shellcheck disable=SC2086
"${PIP[@]}" install -q -c "$CONSTRAINTS" "${idx[@]}" $TORCH_SPEC
"$VPY" -c 'import torch, torchvision; torchvision.ops.nms' \
  || die "torch/torchvision do not import together: pick a matched pair in PARC_TORCH"

# --- CUDA ops: wanted on a machine with a GPU and a CUDA torch (MMCV_CUDA=1/0 forces) -------
TORCH_CUDA=$("$VPY" -c 'import torch; print(torch.version.cuda or "")')
HAVE_GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then HAVE_GPU=1; fi
"$VPY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && HAVE_GPU=1
nvcc_version() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p'; }
home_of_nvcc() {  # the toolkit behind an nvcc: a wrapper script on PATH (as on some GPU
  # images) sits one folder away from it, where torch would guess; nvcc --dryrun prints TOP
  local top
  top=$("$1" --dryrun -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
  if [ -n "$top" ] && [ -d "$top" ]; then (cd "$top" && pwd -P); else dirname "$(dirname "$(readlink -f "$1")")"; fi
}
find_nvcc() {  # prints a CUDA_HOME whose nvcc matches torch's CUDA major.minor
  local c
  for c in "${CUDA_HOME:-}/bin/nvcc" "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc \
           "/usr/local/cuda-$TORCH_CUDA/bin/nvcc"; do
    [ -x "$c" ] || continue
    [ "$(nvcc_version "$c")" = "$TORCH_CUDA" ] && { home_of_nvcc "$c"; return 0; }
  done
  return 1
}
nvcc_from_pypi() {  # NVIDIA's compiler wheels for torch's CUDA, assembled into one CUDA_HOME
  local major=${TORCH_CUDA%%.*} prefix=$CACHE/cuda-$TORCH_CUDA home=$CACHE/cuda-$TORCH_CUDA/home
  local pkgs=("nvidia-cuda-nvcc-cu$major==$TORCH_CUDA.*" "nvidia-cuda-runtime-cu$major==$TORCH_CUDA.*"
              "nvidia-cuda-cccl-cu$major==$TORCH_CUDA.*")
  [ "$major" -ge 13 ] && pkgs=("cuda-toolkit[nvcc,cudart,cccl]==$TORCH_CUDA.*")
  say "no nvcc $TORCH_CUDA on this machine: trying NVIDIA's compiler wheels (${pkgs[*]})"
  "${PIP[@]}" install -q --target "$prefix/site" "${pkgs[@]}" >&2 || return 1
  rm -rf "$home"; mkdir -p "$home/bin" "$home/include" "$home/lib64"
  local d f
  for d in $(find "$prefix/site" -type d \( -name bin -o -name include -o -name lib -o -name lib64 \) -path '*nvidia*'); do
    case $(basename "$d") in bin) dst=bin ;; include) dst=include ;; *) dst=lib64 ;; esac
    for f in "$d"/*; do [ -e "$home/$dst/$(basename "$f")" ] || ln -s "$f" "$home/$dst/"; done
  done
  [ -x "$home/bin/nvcc" ] && [ "$(nvcc_version "$home/bin/nvcc")" = "$TORCH_CUDA" ] && echo "$home"
}
if [ -z "${MMCV_CUDA:-}" ] && [ "$HAVE_GPU" = 1 ] && [ -n "$TORCH_CUDA" ]; then
  if home=$(find_nvcc) || home=$(nvcc_from_pypi); then
    export CUDA_HOME=$home PATH=$home/bin:$PATH MMCV_CUDA=1
    # toolkits assembled from wheels (or trimmed ones) lack cusparse.h & co; torch's own
    # nvidia/*/include folders have them
    NVINC=$("$VPY" -c 'import glob, os, torch; r = os.path.dirname(os.path.dirname(torch.__file__)); print(":".join(sorted(glob.glob(os.path.join(r, "nvidia", "*", "include")) + glob.glob(os.path.join(r, "nvidia", "*", "*", "include")))))')
    export CPATH=${NVINC}${CPATH:+:$CPATH}
    say "GPU + CUDA $TORCH_CUDA torch + nvcc in $home: building mmcv's CUDA ops"
  else
    MMCV_CUDA=0
    cat >&2 <<MSG
[setup_env] ############################################################################
[setup_env] WARNING: this machine has a GPU and a CUDA $TORCH_CUDA torch, but no nvcc $TORCH_CUDA
[setup_env] was found (PATH, \$CUDA_HOME, /usr/local/cuda) and NVIDIA's compiler wheels did
[setup_env] not install. mmcv is built with CPU ops only: mmdet's RoIAlign / NMS will FAIL on
[setup_env] CUDA tensors. Fix: install the CUDA $TORCH_CUDA toolkit, then run
[setup_env]   CUDA_HOME=/usr/local/cuda-$TORCH_CUDA MMCV_CUDA=1 bash tools/setup_env.sh
[setup_env] ############################################################################
MSG
  fi
fi

# Neither mmcv 2.1.0 nor onedl-mmcv 2.3.6 has a wheel for this torch: build the stack's mmcv
# from its sdist with compiled ops, once.
KEY=$("$VPY" -c 'import sys, torch; print("cp%d%d-torch%s" % (sys.version_info[0], sys.version_info[1], torch.__version__))')-ops$([ "${MMCV_CUDA:-0}" = 1 ] && echo cuda || echo cpu)
WHEELDIR=$CACHE/wheels/$MMCV_FILE-$KEY
MARK=$VENV/.parc_mm-mmcv-build  # which build (mmcv dist, python, torch, cpu/cuda ops) is installed
if "$VPY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VER'" 2>/dev/null \
   && [ "$(cat "$MARK" 2>/dev/null || echo "$MMCV_FILE-$KEY")" = "$MMCV_FILE-$KEY" ]; then
  say "$MMCV_DIST $MMCV_VER with ops ($KEY) already installed"
else
  if ! ls "$WHEELDIR"/$MMCV_FILE-*.whl >/dev/null 2>&1; then
    say "building $MMCV_DIST $MMCV_VER with compiled ops for $KEY (about 12 min on 2 cores; progress below)"
    mkdir -p "$WHEELDIR"
    LOG=$WHEELDIR/build.log
    tmp=$(mktemp -d)
    # -O3 restated: CFLAGS replaces Python's defaults; -g0 avoids a 54-min debug build.
    if [ "${MMCV_CUDA:-0}" = 1 ]; then export FORCE_CUDA=1; else export FORCE_CUDA=0; fi
    # mmcv's setup.py (both stacks) forces -std=c++17; torch >= 2.14 headers require C++20.
    # Patch the unpacked sdist (never site-packages) when the installed torch says so.
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$tmp" "$MMCV_DIST==$MMCV_VER" \
      || die "could not download the $MMCV_DIST $MMCV_VER sdist"
    tar xzf "$tmp/$MMCV_FILE.tar.gz" -C "$tmp"
    if grep -q 'C++20 or later' "$("$VPY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "include/ATen/ATen.h"))')"; then
      say "  torch needs C++20: building $MMCV_DIST with -std=c++20"
      sed -i 's/-std=c++1[47]/-std=c++20/g' "$tmp/$MMCV_FILE/setup.py"
    fi
    set +e
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} CFLAGS="-O3 -DNDEBUG -fwrapv -g0" \
      "${PIP[@]}" wheel -v --no-deps --no-build-isolation -w "$tmp" "$tmp/$MMCV_FILE" \
      >"$LOG" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
      sleep 30
      step=$(grep -oE '^ *\[[0-9]+/[0-9]+\]' "$LOG" | tail -n1)
      say "  mmcv build running ${step:-(preparing)}"
    done
    wait $pid; rc=$?
    set -e
    [ $rc -eq 0 ] || { tail -n 40 "$LOG" >&2; die "$MMCV_DIST build failed (log: $LOG)"; }
    mv "$tmp"/$MMCV_FILE-*.whl "$WHEELDIR"/
    rm -rf "$tmp"
  else
    say "reusing cached mmcv wheel from $WHEELDIR"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEELDIR"/$MMCV_FILE-*.whl
  echo "$MMCV_FILE-$KEY" > "$MARK"
fi

say "$STACK stack + parc_mm (editable) + test deps"
"${PIP[@]}" install -q -c "$CONSTRAINTS" -e "$ROOT[$EXTRAS,tests]"
# An editable install has no wheel to carry parc_mm_mmengine.pth (it registers parc_mm with
# mmengine at start-up so that `_base_ = ['parc_mm::...']` works in any script): write it.
# mmengine and mim locate a package's .mim folder at <site-packages>/<name>, which an editable
# install lacks: link it to the checkout's package (whose .mim links configs/ and tools/).
"$VPY" - "$ROOT" <<'PY'
import os, os.path as osp, sys, sysconfig
sys.path.insert(0, sys.argv[1])
import setup_pth  # noqa: E402  (PTH_NAME / PTH_LINE, shared with setup.py)
site = sysconfig.get_paths()['purelib']
with open(osp.join(site, setup_pth.PTH_NAME), 'w') as f:
    f.write(setup_pth.PTH_LINE)
link, target = osp.join(site, 'parc_mm'), osp.join(sys.argv[1], 'parc_mm')
if osp.islink(link) and os.readlink(link) != target:
    os.remove(link)
if not osp.lexists(link):
    os.symlink(target, link)
PY

# mim (mim train/test/search parc_mm): openmim's only use of its `opendatalab` dependency is
# `mim download --dataset`, and installing it pulls openxlab, which downgrades setuptools to 60
# and packaging to 24 and breaks this stack. Install openmim without it.
say "openmim (without opendatalab/openxlab)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" click colorama model-index pandas requests rich tabulate
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps openmim==0.3.9

# mmdeploy (tools/deploy/deploy.py, configs/deploy): its metadata pins protobuf<=3.20.2, which
# would downgrade protobuf below what onnx needs (>= 6); it runs with the newer one. Install
# it without its dependencies (the ones it imports come with the [deploy] extra). Only on
# OpenMMLab's stack: the fork has no mmdeploy release.
if [ "$STACK" = openmmlab ]; then
  MMDEPLOY_VER=$(sed -n 's/^mmdeploy==\([0-9.]*\)$/\1/p' "$CONSTRAINTS")
  say "mmdeploy $MMDEPLOY_VER (without its protobuf pin)"
  "${PIP[@]}" install -q --no-deps "mmdeploy==$MMDEPLOY_VER"
fi

# pnnx (ncnn's converter, tools/deploy/export.py --runtime ncnn): its metadata asks for torch,
# which would pull a second multi-GB build; it only needs the converter binary it ships.
if [ "$STACK" = openmmlab ]; then
  PNNX_VER=$(sed -n 's/^pnnx==\([0-9.]*\)$/\1/p' "$CONSTRAINTS")
  say "pnnx $PNNX_VER (without its torch requirement)"
  "${PIP[@]}" install -q --no-deps "pnnx==$PNNX_VER"
fi

# real images for the demo and the real-data experiment: Debian's dataset-fashion-mnist (the
# original Fashion-MNIST files, 31 MB, nothing downloaded at run time). Only where apt is usable
# without a password; elsewhere one line says what to run (the demo then uses the shapes).
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -n "${PARC_FASHION_MNIST:-}" ] || [ -f "$FMNIST" ]; then
  say "real images: Fashion-MNIST present"
elif ! command -v apt-get >/dev/null 2>&1; then
  say "real images: no apt here: install Fashion-MNIST's four *-ubyte.gz files and set PARC_FASHION_MNIST to their folder (the demo uses the synthetic shapes until then)"
else
  SUDO=()
  [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
  if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    say "real images: apt-get install dataset-fashion-mnist"
    { "${SUDO[@]}" apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1 \
           && "${SUDO[@]}" apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; } \
      || say "real images: apt-get install dataset-fashion-mnist failed (the demo uses the synthetic shapes)"
  else
    say "real images: run 'sudo apt-get install dataset-fashion-mnist' for the real-image demo (the demo uses the synthetic shapes until then)"
  fi
fi

say "stack check"
"$VPY" -m parc_mm.apis.collect_env --quick
say "done: activate with 'source $VENV/bin/activate'"
