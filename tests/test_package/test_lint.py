"""The lint configuration (pyproject.toml, run by `make lint` before the tests) catches what it
should: long lines (E501) and imports out of OpenMMLab order (I001), and accepts a well-formed
file.  The package itself is linted by `make lint`, not here."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'pyproject.toml'

pytest.importorskip('ruff', reason='ruff is installed by requirements/tests.txt (make venv)')

LONG_LINE = 'LONG = ' + repr('x' * 111)  # 120 columns; the limit is 100
BAD = f'''\
import numpy as np
import os

from mmlesion.utils import atomic_open
from mmdet.registry import MODELS

{LONG_LINE}
print(os.sep, np.pi, atomic_open, MODELS, LONG)
'''

# stdlib, third party (mmengine counts as third party), then first party (mmdet and mmlesion)
GOOD = '''\
import os

import numpy as np
from mmengine.config import Config

from mmdet.registry import MODELS
from mmlesion.utils import atomic_open


def describe():
    return 'well within one hundred columns'


print(os.sep, np.pi, Config, atomic_open, MODELS, describe())
'''


def _ruff_check(path):
    return subprocess.run(
        [sys.executable, '-m', 'ruff', 'check', '--no-cache', '--config', str(CONFIG), str(path)],
        capture_output=True, text=True, cwd=str(path.parent))


def test_bad_file_fails(tmp_path):
    assert max(len(line) for line in BAD.splitlines()) == 120
    path = tmp_path / 'bad.py'
    path.write_text(BAD)
    result = _ruff_check(path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert 'E501' in out and 'I001' in out, out


def test_good_file_passes(tmp_path):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    result = _ruff_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_version_pinned_once():
    """requirements/tests.txt, .pre-commit-config.yaml and the installed ruff agree."""
    pin = re.search(r'^ruff==(\S+)', (REPO / 'requirements' / 'tests.txt').read_text(), re.M)
    rev = re.search(r'astral-sh/ruff-pre-commit\s+rev:\s*v(\S+)',
                    (REPO / '.pre-commit-config.yaml').read_text())
    assert pin and rev and pin.group(1) == rev.group(1)
    installed = subprocess.run([sys.executable, '-m', 'ruff', '--version'], capture_output=True,
                               text=True, check=True).stdout.split()[-1]
    assert installed == pin.group(1)
