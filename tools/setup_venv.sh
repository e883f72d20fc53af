#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) on a CPU machine, following
# ../shared/ENVIRONMENT.md.  Idempotent: a stamp records what was installed; a second run
# with unchanged requirements only re-checks that mmcv's compiled ops import.
#
#   VENV=.venv PYTHON=python3 bash tools/setup_venv.sh
#
# GPU users: install your own CUDA build of torch into the venv first; this script then keeps it
# (it only installs the CPU wheel torch==2.13.0 when no torch is importable).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PIP="$VENV/bin/pip"
PY="$VENV/bin/python"
STAMP="$VENV/.mmlesion-env"

want=$(cat tools/setup_venv.sh requirements/*.txt setup.py 2>/dev/null | sha256sum | cut -d' ' -f1)

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$PY" -c "import mmcv._ext, mmdet, mmlesion" >/dev/null 2>&1; then
  echo "[setup_venv] $VENV is up to date"
  exit 0
fi

t0=$(date +%s)
if [ ! -x "$PY" ]; then
  echo "[setup_venv] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PIP" install -q --upgrade pip wheel
# torch 2.13 wants setuptools>=77.0.3; mmcv's setup.py and mmengine's `mmdet::` config
# inheritance need pkg_resources, which setuptools 81 removed.
"$PIP" install -q "setuptools>=77.0.3,<81"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  # The CPU wheel; an unpinned "torch" would pull a multi-GB CUDA build.
  "$PIP" install -q torch==2.13.0
fi
"$PIP" install -q mmengine==0.10.7 -r requirements/runtime.txt -r requirements/tests.txt
if ! "$PY" -c "import mmcv._ext" >/dev/null 2>&1; then
  echo "[setup_venv] building mmcv 2.1.0 with ops (about 11 min on 2 cores the first time; pip caches the wheel)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$PIP" install -q --no-build-isolation mmcv==2.1.0
fi
"$PY" -c "import mmcv._ext" || { echo "[setup_venv] mmcv was installed without its ops (mmcv._ext missing)" >&2; exit 1; }
"$PIP" install -q mmdet==3.3.0
"$PIP" install -q --no-deps --no-build-isolation -e .
"$PY" -c "import mmcv._ext, mmdet, mmlesion"
echo "$want" > "$STAMP"
echo "[setup_venv] ready in $(( $(date +%s) - t0 )) s"
