# Sourced by tools/dist_train.sh, dist_test.sh and dist_harvest.sh: torchrun_tool TOOL NPROC ARGS...
# starts NPROC ranks of tools/TOOL with ARGS and `--launcher pytorch`.  NCCL on GPUs; on a CPU-only
# machine the ranks use gloo (mmlesion.engine.launch).  NNODES, NODE_RANK, PORT and MASTER_ADDR
# as in mmdet.
_torchrun_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
# the interpreter: .venv, else $PYTHON, else python3 / python (tools/README.md)
. "$_torchrun_dir/_python.sh"
torchrun_tool() {
  local tool=$1 nproc=$2
  shift 2
  # make `import mmlesion` work from a source checkout that is not pip-installed
  PYTHONPATH="$_torchrun_dir/..${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -m torch.distributed.run \
      --nnodes="${NNODES:-1}" \
      --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --nproc_per_node="$nproc" \
      --master_port="${PORT:-29500}" \
      "$_torchrun_dir/$tool" "$@" --launcher pytorch
}
