#!/usr/bin/env bash
# Distributed harvest rounds with torchrun: tools/dist_harvest.sh CONFIG NUM_PROCESSES [args of
# tools/harvest_round.py, e.g. --work-dir DIR --rounds 3]; the scans are sharded over the ranks.
# NCCL on GPUs; on a CPU-only machine the ranks use gloo (mmlesion.engine.launch).
# NNODES, NODE_RANK, PORT and MASTER_ADDR as in mmdet.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/_torchrun.sh"
torchrun_tool harvest_round.py "$2" "$1" "${@:3}"
