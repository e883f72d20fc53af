# Sourced by tools/dist_train.sh, tools/dist_test.sh and tools/slurm_train.sh: sets PY to the
# interpreter that runs tools/*.py, as tools/_interpreter.py chooses for a tool started directly
# (tools/README.md): the checkout's .venv/bin/python when it exists, else $PYTHON, else python3,
# else python.  The tools then stay in it (MMLESION_TOOLS_NO_REEXEC=1).
_tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ -x "$_tools_dir/../.venv/bin/python" ]; then
  PY="$(cd "$_tools_dir/.." && pwd)/.venv/bin/python"
elif [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif command -v python3 >/dev/null 2>&1; then
  PY=python3
else
  PY=python
fi
export MMLESION_TOOLS_NO_REEXEC=1
