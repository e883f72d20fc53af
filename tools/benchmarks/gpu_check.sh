#!/usr/bin/env bash
# GPU check (issue 15): the paper-sized MSCN on this machine's GPU -- training and inference
# throughput (bench_train.py, NCHW and channels-last side by side) and the volume scan stage by
# stage (bench_scan.py: PNG decoding, input side, full scan, stacking; FP32 and --fp16), with the
# projected time of a scan of DeepLesion's 928K slices.  Prints only; nothing is asserted.
#
#   tools/benchmarks/gpu_check.sh [DATA_DIR [WORKERS [MAX_VOLUMES]]]
#
# DATA_DIR: DeepLesion-format data with Images_png/, DL_info.csv and annotations/train.json
#   (tools/convert_deeplesion.py); default: 24 synthetic 512 px sub-volumes generated once into
#   work_dirs/gpu_check/data.  WORKERS: the scan's data-side processes (default: the CPU count,
#   at most 8).  MAX_VOLUMES: sub-volumes scanned (default 16).
# Environment: CONFIG (default configs/mscn_hnsl.py), DEVICE (default cuda), BATCH (slices per
#   forward pass, default 16), TRAIN_BATCH (default 8).
set -euo pipefail
DIR="$(cd "$(dirname "$0")/.." && pwd)"  # tools/
ROOT="$(cd "$DIR/.." && pwd)"
# the interpreter: .venv, else $PYTHON, else python3 / python (tools/README.md)
. "$DIR/_python.sh"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
CONFIG=${CONFIG:-$ROOT/configs/mscn_hnsl.py}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-16}
TRAIN_BATCH=${TRAIN_BATCH:-8}
DATA=${1:-$ROOT/work_dirs/gpu_check/data}
NCPU=$(nproc 2>/dev/null || echo 4)
WORKERS=${2:-$(( NCPU < 8 ? NCPU : 8 ))}
MAX_VOLUMES=${3:-16}
SLICES=928000  # DeepLesion: every slice of V_M and V_H, scanned once per harvest round

if [ ! -f "$DATA/annotations/train.json" ]; then
  if [ -n "${1:-}" ]; then
    echo "error: $DATA/annotations/train.json not found (tools/convert_deeplesion.py)" >&2
    exit 1
  fi
  echo "== synthetic 512 px data -> $DATA"
  "$PY" "$DIR/make_synthetic.py" --out "$DATA" --volumes 24 --seed 15 --image-size 512 --quiet
  "$PY" "$DIR/convert_deeplesion.py" --data-root "$DATA" --out-dir "$DATA/annotations" \
    > /dev/null
fi

"$PY" - "$DEVICE" <<'EOF'
import sys
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

echo "== bench_train: $(basename "$CONFIG"), 9-slice 512 x 512, batch $TRAIN_BATCH"
OUT=$("$PY" "$DIR/benchmarks/bench_train.py" "$CONFIG" --size 512 --batch "$TRAIN_BATCH" \
  --device "$DEVICE")
echo "$OUT"
echo "$OUT" | awk -v n="$SLICES" '
  / inference: / { for (i = 1; i <= NF; i++) if ($i == "inference:") ips = $(i + 1);
                   printf "%13s  model alone: %d slices in %.2f h at %.1f slices/s\n",
                          $1, n, n / ips / 3600, ips }'

for FP in fp32 fp16; do
  echo "== bench_scan ($FP): $MAX_VOLUMES sub-volumes of $DATA, $WORKERS worker(s), batch $BATCH"
  EXTRA=""
  if [ "$FP" = fp16 ]; then EXTRA="--fp16 --no-reference --repeat 1"; fi
  # shellcheck disable=SC2086
  "$PY" "$DIR/benchmarks/bench_scan.py" "$CONFIG" --data-root "$DATA" \
    --ann "$DATA/annotations/train.json" --device "$DEVICE" --workers "$WORKERS" \
    --max-volumes "$MAX_VOLUMES" --batch-size "$BATCH" $EXTRA
done
