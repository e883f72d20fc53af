"""Pick the Python that runs ``tools/*.py``, however they were started (tools/README.md).

Every ``tools/*.py`` imports this module before anything else.  When the script is the program
being run (not imported), the interpreter it should run under is, in this order:

1. the checkout's virtual environment ``.venv/bin/python`` when it exists;
2. else ``$PYTHON`` when it is set;
3. else the interpreter already running (``#!/usr/bin/env python3`` or ``python tools/x.py``).

If that is not the running one, the script is re-executed under it (``os.execv``, same arguments
and environment), once: ``MMLESION_TOOLS_NO_REEXEC=1`` marks the re-executed process, and set by
hand it keeps whatever interpreter runs the script.  The shell launchers (``dist_train.sh``,
``dist_test.sh``, ``slurm_train.sh``) choose the same way in ``tools/_python.sh`` and set it.
When ``mmlesion`` is not importable, the checkout's root goes on ``sys.path`` (a checkout that was
never ``pip install``-ed); an installed mmlesion is used as it is.
"""
import importlib.util
import os
import shutil
import sys

NO_REEXEC = 'MMLESION_TOOLS_NO_REEXEC'
TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS_DIR)
VENV = os.path.join(ROOT, '.venv')


def chosen_interpreter():
    """The interpreter to re-execute under, or None to stay in this one."""
    if os.environ.get(NO_REEXEC):
        return None
    venv_python = os.path.join(VENV, 'bin', 'python')
    if os.access(venv_python, os.X_OK):
        if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
            return None
        return venv_python
    wanted = os.environ.get('PYTHON')
    if wanted:
        path = shutil.which(wanted)
        if path is None:
            raise SystemExit(f'$PYTHON is {wanted!r}, which is not an executable; unset it or '
                             'point it at a Python with mmlesion installed')
        if os.path.abspath(path) != os.path.abspath(sys.executable):
            return path
    return None


def _main_is_a_tool() -> bool:
    """The program run is ``tools/*.py`` or ``tools/{benchmarks,misc}/*.py``."""
    main_file = getattr(sys.modules.get('__main__'), '__file__', None)
    if not main_file:
        return False
    folder = os.path.dirname(os.path.abspath(main_file))
    return folder == TOOLS_DIR or (os.path.dirname(folder) == TOOLS_DIR and
                                   os.path.basename(folder) in ('benchmarks', 'misc'))


def ensure_interpreter() -> None:
    """Re-execute the running tool under :func:`chosen_interpreter` if it differs."""
    if not _main_is_a_tool():
        return
    python = chosen_interpreter()
    if python is not None:
        os.environ[NO_REEXEC] = '1'
        os.execv(python, [python, sys.argv[0], *sys.argv[1:]])
    if importlib.util.find_spec('mmlesion') is None and \
            os.path.isfile(os.path.join(ROOT, 'mmlesion', '__init__.py')):
        sys.path.insert(1, ROOT)


ensure_interpreter()
