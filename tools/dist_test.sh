#!/usr/bin/env bash
# Distributed testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py args]
# e.g. tools/dist_test.sh configs/mscn_hnsl.py work_dirs/mscn_hnsl/epoch_8.pth 4 --eval p3d
# The volume scan shards sub-volumes over the ranks and merges them on rank 0.  NCCL on GPUs; on a
# CPU-only machine the ranks use gloo (mmlesion.engine.launch).  NNODES, NODE_RANK, PORT and
# MASTER_ADDR as in mmdet.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/_torchrun.sh"
torchrun_tool test.py "$3" "$1" "$2" "${@:4}"
