#!/usr/bin/env bash
# The one prepared device run (<= 9 min on one H200 with its own Python / torch / nvcc and no
# package index), results in order of value, each written as soon as it exists:
#
#   1. models.{md,json}      ParC-ConvNeXt-T (paper, all blocks) vs ConvNeXt-T at 800x1333,
#                            fp32 and bf16 autocast, fwd and fwd+bwd, every impl and auto
#                            (no mmcv ops needed: runs while mmcv builds on the other cores)
#   2. stages.md             the op-level stage table (ParC vs dw 3x3 / 7x7, fwd and fwd+bwd)
#   3. gpu_checks.json       deterministic mode, sync-free eval, CUDA-graph capture / replay,
#                            AMP dtypes + finite gradients per impl, autotuner training pick
#   4. mask_rcnn.log         mmcv with CUDA ops, one Mask R-CNN training step of the demo
#                            config on the GPU in fp32 and with --amp (+ mmcv_build.log tail)
#   5. summary.txt           what ran, what was skipped, timings, the failed steps
#
# Every scratch folder (site packages, mmcv build, demo data, work dirs) is a fresh mktemp
# folder of this run (removed at exit unless PARC_GPU_KEEP=1); nothing outside them and OUT is
# written or deleted. Exit status: 0 when every step ran or was skipped for a stated reason,
# 1 when any failed (the list is the last line of summary.txt).
#
#   bash tools/gpu/make_wheelhouse.sh .whl 3.12          # here, with a package index
#   bash tools/gpu/check.sh .whl "$OUT"                  # there (device tool: carry .whl)
#   bash tools/gpu/check.sh --dry-run .whl /tmp/out      # rehearsal on a CPU: CUDA steps
#                                                        # skipped, tiny sizes, 1 round
set -uo pipefail
DRY=0
if [ "${1:-}" = --dry-run ]; then DRY=1; shift; fi
WHL=${1:-.whl}
OUT=${2:-work_dirs/gpu}
PY=${PARC_GPU_PYTHON:-python3}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/parc_gpu.XXXXXX") || { echo "cannot make a temp folder" >&2; exit 1; }
[ "${PARC_GPU_KEEP:-0}" = 1 ] || trap 'rm -rf "$SCRATCH"' EXIT
SITE=$SCRATCH/site            # fresh per run: no package of an earlier run is reused
MMCV_SRC=$SCRATCH/mmcv
mkdir -p "$OUT" "$SITE" "$MMCV_SRC"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
T0=$(date +%s)
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
FAILED=()
say() { printf '[check %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" | tee -a "$SUMMARY"; }
fail() { FAILED+=("$1"); say "FAIL: $1${2:+ ($2)}"; }

# --- 0. the carried stack: no index; setuptools only where the image lacks pkg_resources ---
wheels=()
for w in "$WHL"/*.whl; do case $(basename "$w") in setuptools-*) ;; *) wheels+=("$w") ;; esac; done
"$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
  --target "$SITE" "${wheels[@]}" || { fail "installing the wheelhouse"; say "failed: ${FAILED[*]}"; exit 1; }
if ! "$PY" -c 'import pkg_resources' 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
    --target "$SITE" "$WHL"/setuptools-*.whl && say "setuptools 80 carried (no pkg_resources here)"
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
           torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' \
  | tee -a "$SUMMARY"
HAVE_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
[ "$DRY" = 1 ] && HAVE_CUDA=0
DEV=$([ "$HAVE_CUDA" = 1 ] && echo cuda || echo cpu)

# --- 1. start mmcv's CUDA build in the background (it takes ~4-5 min on 16 cores) ------------
cuda_home() {  # the toolkit behind nvcc: on the GPU image nvcc on PATH is a wrapper script,
  # one folder below which torch would guess CUDA_HOME; nvcc --dryrun prints the real TOP
  local top
  top=$(nvcc --dryrun -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
  [ -n "$top" ] && [ -d "$top" ] && { (cd "$top" && pwd -P); return 0; }
  dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"
}
BUILD_PID=
if [ "$HAVE_CUDA" = 1 ] && command -v nvcc >/dev/null; then
  export CUDA_HOME=$(cuda_home)
  # the toolkit there lacks cusparse.h & co; torch's own nvidia/cu13/include has them
  NVINC=$("$PY" -c 'import glob, os, torch; r = os.path.dirname(os.path.dirname(torch.__file__));
print(":".join(sorted(glob.glob(os.path.join(r, "nvidia", "*", "include")) +
                     glob.glob(os.path.join(r, "nvidia", "*", "*", "include")))))')
  export CPATH=${NVINC}${CPATH:+:$CPATH}
  say "CUDA_HOME=$CUDA_HOME (nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
  tar xzf "$WHL"/mmcv-2.1.0.tar.gz -C "$MMCV_SRC"
  ATEN=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "include/ATen/ATen.h"))')
  grep -q 'C++20 or later' "$ATEN" && sed -i 's/-std=c++1[47]/-std=c++20/g' "$MMCV_SRC"/mmcv-2.1.0/setup.py
  JOBS=$(( $(nproc) > 4 ? $(nproc) - 3 : 1 ))  # leave cores to the benchmarks
  ( cd "$MMCV_SRC"/mmcv-2.1.0 && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=$JOBS \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} CFLAGS="-O3 -DNDEBUG -fwrapv -g0" \
    nice "$PY" setup.py -q build_ext --inplace ) > "$SCRATCH/mmcv_build.log" 2>&1 &
  BUILD_PID=$!
  say "mmcv CUDA build started (pid $BUILD_PID, $JOBS jobs)"
else
  say "skipped: mmcv CUDA build (no CUDA$([ "$DRY" = 1 ] && echo ', dry run'))"
fi

# --- 2. the model-level benchmark (the most valuable result) ---------------------------------
if [ "$DRY" = 1 ]; then
  BARGS=(--inputs det --scale 0.1 --rounds 1 --models "ParC-ConvNeXt-T (paper)")
else
  BARGS=(--inputs det --rounds 8 --models "ParC-ConvNeXt-T (paper)" "ParC-ConvNeXt-T (all)")
fi
for dt in fp32 bf16; do
  "$PY" tools/analysis/benchmark_parc.py --device "$DEV" --dtype $dt "${BARGS[@]}" \
    --impls auto direct fft gemm --json "$OUT/models_$dt.json" >> "$OUT/models.md" 2>&1 \
    && say "models $dt: done" || fail "models $dt" "see models.md"
done

# --- 3. the op-level stage table --------------------------------------------------------------
SARGS=(--device "$DEV")
[ "$DRY" = 1 ] && SARGS+=(--scale 0.05 --reps 1)
"$PY" tools/analysis/benchmark_parc.py "${SARGS[@]}" > "$OUT/stages.md" 2>&1 \
  && say "stages: done" || fail "stages" "see stages.md"

# --- 4. the GPU-only checks -------------------------------------------------------------------
"$PY" tools/gpu/gpu_checks.py "$OUT/gpu_checks.json" --device "$DEV" > "$SCRATCH/gpu_checks.log" 2>&1 \
  && say "gpu checks: written" || { fail "gpu checks"; tail -20 "$SCRATCH/gpu_checks.log" >> "$SUMMARY"; }

# --- 5. mmcv ops + one Mask R-CNN step on the GPU (fp32, then --amp) --------------------------
if [ -n "$BUILD_PID" ]; then
  wait "$BUILD_PID"; rc=$?
  tail -n 30 "$SCRATCH/mmcv_build.log" > "$OUT/mmcv_build.log"
  if [ $rc = 0 ]; then
    export PYTHONPATH=$MMCV_SRC/mmcv-2.1.0:$PYTHONPATH
    say "mmcv built"
    SHAPES=$SCRATCH/shapes
    "$PY" -m parc_mm.datasets.synthetic "$SHAPES" --num-train 8 --num-val 4 > /dev/null \
      || fail "demo data"
    for amp in "" --amp; do
      "$PY" tools/train.py configs/demo/shapes_det_parc-convnext_mask-rcnn.py $amp \
        --work-dir "$SCRATCH/det$amp" --cfg-options train_dataloader.dataset.data_root="$SHAPES"/coco \
        val_dataloader.dataset.data_root="$SHAPES"/coco test_dataloader.dataset.data_root="$SHAPES"/coco \
        val_evaluator.ann_file="$SHAPES"/coco/annotations/instances_val.json \
        train_cfg.max_iters=2 train_cfg.val_interval=2 default_hooks.logger.interval=1 \
        >> "$OUT/mask_rcnn.log" 2>&1 && say "Mask R-CNN step ${amp:-fp32}: done" \
        || fail "Mask R-CNN step ${amp:-fp32}" "see mask_rcnn.log"
    done
  else
    fail "mmcv CUDA build" "see mmcv_build.log"
  fi
else
  say "skipped: Mask R-CNN GPU step (no CUDA build)"
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  say "failed: ${FAILED[*]}"
  exit 1
fi
say "done: every step ran or was skipped for the reason stated"
