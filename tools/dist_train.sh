#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args]
# NCCL on GPUs; on a CPU-only machine the ranks use gloo (mmlesion.engine.launch).
# NNODES, NODE_RANK, PORT and MASTER_ADDR as in mmdet.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/_torchrun.sh"
torchrun_tool train.py "$2" "$1" "${@:3}"
