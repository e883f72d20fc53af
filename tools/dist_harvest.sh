#!/usr/bin/env bash
# Distributed harvest rounds with torchrun: tools/dist_harvest.sh CONFIG NUM_PROCESSES [args of
# tools/harvest_round.py, e.g. --work-dir DIR --rounds 3]; the scans are sharded over the ranks.
# NCCL on GPUs; on a CPU-only machine the ranks use gloo (mmlesion.engine.launch).
# NNODES, NODE_RANK, PORT and MASTER_ADDR as in mmdet.
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR="$(cd "$(dirname "$0")" && pwd)"
# the interpreter: .venv, else $PYTHON, else python3 / python (tools/README.md)
. "$DIR/_python.sh"
# make `import mmlesion` work from a source checkout that is not pip-installed
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PY" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/harvest_round.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
