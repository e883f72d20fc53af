#!/usr/bin/env bash
# GPU check (issue 15): the paper-sized MSCN on this machine's GPU -- training and inference
# throughput (bench_train.py, NCHW and channels-last side by side) and the volume scan stage by
# stage (bench_scan.py: PNG decoding, input side, then the full scan and the model alone on
# prepared volumes for each scan variant -- float32, bf16 / fp16 autocast, channels-last,
# cross-volume batches -- side by side), with the projected time of a scan of DeepLesion's 928K
# slices.  Prints only, each figure as soon as it is measured; nothing is asserted.  A step that
# fails or runs past STEP_TIMEOUT is reported and the next one runs.
#
#   tools/benchmarks/gpu_check.sh [DATA_DIR [WORKERS [MAX_VOLUMES]]]
#
# DATA_DIR: DeepLesion-format data with Images_png/, DL_info.csv and annotations/train.json
#   (tools/convert_deeplesion.py); default: VOLUMES synthetic SIZE px sub-volumes generated once
#   into work_dirs/gpu_check/data-SIZEpx-VOLUMESv.  WORKERS: the scan's data-side processes
#   (default: the CPU count, at most 8).  MAX_VOLUMES: sub-volumes scanned (default 16).
# Environment (defaults in brackets):
#   CONFIG [configs/mscn_hnsl.py]  DEVICE [cuda]  BATCH: slices per forward pass [16]
#   TRAIN_BATCH [8]  TRAIN_ITERS [5]  SIZE: synthetic slices and bench_train input, px [512]
#   VOLUMES: synthetic sub-volumes [16]  MAX_SLICES: slices per synthetic sub-volume [40]
#   VARIANTS: bench_scan --variants [fp32,bf16,fp16+cl,bf16+cl,bf16+cl+xv,bf16+cl+xv+tc]
#   REPEAT: timed runs of the data-side stages [2]  STEP_TIMEOUT: seconds per step [240]
#   SKIP_TRAIN=1: no bench_train.  PYTHON: the interpreter when the checkout has no .venv.
#   CHECKPOINT: weights for bench_scan (a file you trust); default random initialisation, whose
#   speed is real but whose ~0 px boxes make no tracklets to compare between variants.
# A smoke run on the CPU with the demo's tiny model (about a minute on 2 cores):
#   DEVICE=cpu SIZE=96 VOLUMES=3 MAX_SLICES=8 BATCH=4 TRAIN_BATCH=2 TRAIN_ITERS=1 REPEAT=1 \
#   CONFIG=configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py \
#   tools/benchmarks/gpu_check.sh "" 0 2
set -uo pipefail
export PYTHONUNBUFFERED=1  # every figure printed when measured, also through a pipe
DIR="$(cd "$(dirname "$0")/.." && pwd)"  # tools/
ROOT="$(cd "$DIR/.." && pwd)"
# the interpreter: .venv, else $PYTHON, else python3 / python (tools/README.md)
. "$DIR/_python.sh"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
CONFIG=${CONFIG:-$ROOT/configs/mscn_hnsl.py}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-16}
TRAIN_BATCH=${TRAIN_BATCH:-8}
TRAIN_ITERS=${TRAIN_ITERS:-5}
SIZE=${SIZE:-512}
VOLUMES=${VOLUMES:-16}
MAX_SLICES=${MAX_SLICES:-40}
VARIANTS=${VARIANTS:-fp32,bf16,fp16+cl,bf16+cl,bf16+cl+xv,bf16+cl+xv+tc}
REPEAT=${REPEAT:-2}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
# the machine's cores (nproc would follow OMP_NUM_THREADS)
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc --all 2>/dev/null || echo 4)
DATA=${1:-}
WORKERS=${2:-$(( NCPU < 8 ? NCPU : 8 ))}
MAX_VOLUMES=${3:-16}
SLICES=928000  # DeepLesion: every slice of V_M and V_H, scanned once per harvest round
FAILED=()
T_START=$(date +%s)

# run a step under STEP_TIMEOUT (when `timeout` exists); a failure is reported, not fatal
step() {
  local name=$1; shift
  local t0 rc
  t0=$(date +%s)
  if command -v timeout >/dev/null 2>&1; then
    timeout "$STEP_TIMEOUT" "$@"; rc=$?
  else
    "$@"; rc=$?
  fi
  echo "   [$name: $(( $(date +%s) - t0 )) s, exit $rc]"
  if [ "$rc" -ne 0 ]; then FAILED+=("$name (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'))"); fi
  return "$rc"
}

echo "== $PY: $("$PY" --version 2>&1); $NCPU CPU cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
# what the tools import: stop here with the list of what is missing
if ! "$PY" - "$DEVICE" <<'EOF'
import importlib
import sys
missing = []
for name in ('torch', 'numpy', 'scipy', 'cv2', 'filterpy', 'pycocotools', 'mmengine', 'mmcv',
             'mmdet', 'mmcv._ext'):
    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 -- any failure to import is reported alike
        missing.append(f'{name} ({type(e).__name__}: {str(e).splitlines()[0][:100]})')
if missing:
    print('error: this Python cannot run mmlesion; missing or broken: ' + '; '.join(missing),
          file=sys.stderr)
    print('  install requirements/ (mmcv 2.1.0 with its compiled ops: mmcv._ext, built '
          'against this torch), or set PYTHON to an interpreter that has them', file=sys.stderr)
    raise SystemExit(2)
import torch
dev = sys.argv[1]
if dev.startswith('cuda'):
    if not torch.cuda.is_available():
        raise SystemExit('error: no CUDA device (set DEVICE=cpu to run this on the CPU)')
    p = torch.cuda.get_device_properties(torch.device(dev))
    print(f'== {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, '
          f'CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}')
else:
    print(f'== {dev}; torch {torch.__version__}, {torch.get_num_threads()} threads')
EOF
then
  exit 2
fi

if [ -z "$DATA" ]; then
  DATA=$ROOT/work_dirs/gpu_check/data-${SIZE}px-${VOLUMES}v
  if [ ! -f "$DATA/annotations/train.json" ]; then
    echo "== synthetic $SIZE px data, $VOLUMES sub-volumes of <= $MAX_SLICES slices -> $DATA"
    step make_synthetic "$PY" "$DIR/make_synthetic.py" --out "$DATA" --volumes "$VOLUMES" \
      --seed 15 --image-size "$SIZE" --max-slices "$MAX_SLICES" --overwrite --quiet || exit 1
    step convert "$PY" "$DIR/convert_deeplesion.py" --data-root "$DATA" \
      --out-dir "$DATA/annotations" > /dev/null || exit 1
  fi
elif [ ! -f "$DATA/annotations/train.json" ]; then
  echo "error: $DATA/annotations/train.json not found (tools/convert_deeplesion.py)" >&2
  exit 1
fi

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  echo "== bench_train: $(basename "$CONFIG"), 9-slice $SIZE x $SIZE, batch $TRAIN_BATCH"
  TRAIN_LOG=$(mktemp)
  # bench_train prints each memory format's figures as measured; tee in a process substitution
  # keeps `step` in this shell (a failure is counted)
  step bench_train "$PY" "$DIR/benchmarks/bench_train.py" "$CONFIG" --size "$SIZE" \
    --batch "$TRAIN_BATCH" --iters "$TRAIN_ITERS" --device "$DEVICE" > >(tee "$TRAIN_LOG")
  sleep 1  # tee's last lines
  awk -v n="$SLICES" '
    / inference: / { for (i = 1; i <= NF; i++) if ($i == "inference:") ips = $(i + 1);
                     printf "%13s  model alone: %d slices in %.2f h at %.1f slices/s\n",
                            $1, n, n / ips / 3600, ips }' "$TRAIN_LOG"
  rm -f "$TRAIN_LOG"
fi

echo "== bench_scan: $MAX_VOLUMES sub-volumes of $DATA, $WORKERS worker(s), batch $BATCH," \
  "variants $VARIANTS (928K h: the projected DeepLesion scan)"
CKPT_ARGS=()
if [ -n "${CHECKPOINT:-}" ]; then CKPT_ARGS=("$CHECKPOINT" --trust-checkpoint); fi
step bench_scan "$PY" "$DIR/benchmarks/bench_scan.py" "$CONFIG" ${CKPT_ARGS[@]+"${CKPT_ARGS[@]}"} \
  --data-root "$DATA" \
  --ann "$DATA/annotations/train.json" --device "$DEVICE" --workers "$WORKERS" \
  --max-volumes "$MAX_VOLUMES" --batch-size "$BATCH" --repeat "$REPEAT" --variants "$VARIANTS"

echo "== gpu_check done in $(( $(date +%s) - T_START )) s"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "failed steps: ${FAILED[*]}" >&2
  exit 1
fi
