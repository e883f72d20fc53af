"""Commands as typed (tools/README.md): every ``tools/*.py`` starts directly (shebang, git's run
bit) from a fresh shell with no environment activated and runs ``--help``; the interpreter choice
(.venv, else $PYTHON, else the running one / python3) of ``tools/_interpreter.py`` and of the
launchers' ``tools/_python.sh``.  The 2-rank ``tools/dist_test.sh`` run from such a shell is
``test_test_tool.py::test_two_cpu_ranks_scan_like_one``."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')


def tool_scripts():
    return sorted(f for f in os.listdir(TOOLS) if f.endswith('.py') and not f.startswith('_'))


def bare_env(**extra):
    """A fresh shell's environment: no virtual environment on PATH, no $PYTHON."""
    venv_bin = osp.dirname(sys.executable)
    path = [p for p in os.environ.get('PATH', '').split(os.pathsep)
            if p and osp.abspath(p) != osp.abspath(venv_bin) and '.venv' not in p]
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME',
                        'MMLESION_TOOLS_NO_REEXEC')}
    env.update(PATH=os.pathsep.join(path or ['/usr/bin', '/bin']), OMP_NUM_THREADS='1', **extra)
    return env


def test_every_tool_has_a_shebang_the_run_bit_and_the_interpreter_header():
    modes = {}
    if shutil.which('git') and osp.isdir(osp.join(REPO, '.git')):
        out = subprocess.run(['git', 'ls-files', '-s', 'tools'], cwd=REPO, capture_output=True,
                             text=True).stdout
        modes = {line.split('\t')[1]: line.split()[0] for line in out.splitlines()}
    for name in tool_scripts() + ['dist_train.sh', 'dist_test.sh', 'dist_harvest.sh',
                                  'slurm_train.sh']:
        path = osp.join(TOOLS, name)
        with open(path) as f:
            text = f.read()
        assert text.startswith('#!/usr/bin/env '), name
        assert os.access(path, os.X_OK), f'chmod +x tools/{name}'
        if f'tools/{name}' in modes:
            assert modes[f'tools/{name}'] == '100755', \
                f'git update-index --chmod=+x tools/{name}'
        if name.endswith('.py'):
            header = text.index('import _interpreter')
            assert 'import mmlesion' not in text[:header] and 'from mmlesion' not in text[:header]
        else:  # the interpreter chosen by _python.sh (directly or through _torchrun.sh)
            assert ('. "$DIR/_python.sh"' in text or '/_torchrun.sh"' in text), name
            assert '"$PYTHON"' not in text, name
    with open(osp.join(TOOLS, '_torchrun.sh')) as f:
        assert '. "$_torchrun_dir/_python.sh"' in f.read()


@pytest.mark.parametrize('names', [('eval_p3d.py', 'convert_deeplesion.py')])
def test_tools_run_help_when_executed_directly(tmp_path, names):
    """``tools/x.py --help`` from an empty folder, PATH without the venv: the tools re-execute
    under the checkout's .venv.  Two tools, one of each shape (``main()`` and
    ``sys.exit(main())``): each start imports mmlesion (5-10 s of CPU); every tool has the same
    header (test above) and every parser is built in test_help_texts.py."""
    procs = {}
    for name in names:
        procs[name] = subprocess.Popen(
            [osp.join(TOOLS, name), '--help'], cwd=str(tmp_path), env=bare_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        assert proc.returncode == 0, f'{name}: {err[-3000:]}'
        assert out.startswith('usage: '), f'{name}: {out[:300]}'


def _fake_checkout(tmp_path, venv):
    tools = tmp_path / 'tools'
    tools.mkdir()
    shutil.copy(osp.join(TOOLS, '_interpreter.py'), tools)
    shutil.copy(osp.join(TOOLS, '_python.sh'), tools)
    (tools / 'where.py').write_text('import sys\n\nimport _interpreter  # noqa: F401\n\n'
                                    'print(sys.executable)\n')
    if venv:
        bin_dir = tmp_path / '.venv' / 'bin'
        bin_dir.mkdir(parents=True)
        os.symlink(sys.executable, bin_dir / 'python')
    return tools


@pytest.mark.parametrize('venv', [False, True])
def test_interpreter_choice(tmp_path, venv):
    tools = _fake_checkout(tmp_path, venv)
    system = shutil.which('python3', path=bare_env()['PATH']) or sys.executable
    where = [system, str(tools / 'where.py')]
    system = subprocess.run([system, '-c', 'import sys; print(sys.executable)'],
                            capture_output=True, text=True).stdout.strip()  # pyenv shims
    # the shell launchers
    shell = ['bash', '-c', '. tools/_python.sh; echo "$PY $MMLESION_TOOLS_NO_REEXEC"']
    out = subprocess.run(shell, cwd=tmp_path, env=bare_env(PYTHON='/opt/py'),
                         capture_output=True, text=True).stdout.split()
    assert out == [str(tmp_path / '.venv' / 'bin' / 'python') if venv else '/opt/py', '1']
    if not venv:
        out = subprocess.run(shell, cwd=tmp_path, env=bare_env(), capture_output=True,
                             text=True).stdout.split()
        assert out == ['python3', '1']
    # a tool started by any interpreter: .venv first, else $PYTHON, else the running one
    run = subprocess.run(where, cwd=tmp_path, env=bare_env(PYTHON=sys.executable),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    expected = str(tmp_path / '.venv' / 'bin' / 'python') if venv else sys.executable
    assert run.stdout.strip() == expected
    if not venv:
        run = subprocess.run(where, cwd=tmp_path, env=bare_env(), capture_output=True,
                             text=True)
        assert run.stdout.strip() == system
        run = subprocess.run(where, cwd=tmp_path, env=bare_env(PYTHON='no-such-python-here'),
                             capture_output=True, text=True)
        assert run.returncode != 0 and '$PYTHON' in run.stderr
    # MMLESION_TOOLS_NO_REEXEC=1 keeps the interpreter the script was started with
    run = subprocess.run(where, cwd=tmp_path, env=bare_env(PYTHON=sys.executable,
                                                           MMLESION_TOOLS_NO_REEXEC='1'),
                         capture_output=True, text=True)
    assert run.stdout.strip() == system
