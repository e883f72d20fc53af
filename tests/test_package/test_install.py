"""``pip install .`` (non-editable) gives a package that works without the checkout.

A copy of the source (what setup.py packages: mmlesion/, configs/, requirements/, setup.py,
README.md) is built and installed into a temporary target, offline and without dependencies (they
come from the running environment).  Then, with only that target on ``PYTHONPATH`` and the
working directory an empty folder (so the checkout is not importable), the installed package is
used through the checkout's ``tools/*.py`` scripts: ``import mmlesion`` resolves inside the
target, the packaged configs resolve, and a tiny dataset is generated and converted.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_ITEMS = ('mmlesion', 'configs', 'requirements', 'setup.py', 'README.md', 'pyproject.toml')
DEMO_CONFIG = 'configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py'


def _run(args, cwd, env, timeout=240):
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n' \
                              f'{r.stderr[-5000:]}'
    return r.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """``(target folder, environment for subprocesses, empty working directory)``."""
    pytest.importorskip('setuptools')
    tmp = tmp_path_factory.mktemp('install')
    src = tmp / 'src'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info', 'build')
    for item in SOURCE_ITEMS:
        path = os.path.join(REPO, item)
        if os.path.isdir(path):
            shutil.copytree(path, src / item, ignore=ignore)
        elif os.path.isfile(path):
            shutil.copy2(path, src / item)
    target = tmp / 'site'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1', PYTHONDONTWRITEBYTECODE='1')
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation',
          '--no-index', '--no-cache-dir', '--quiet', '--target', str(target), str(src)],
         cwd=str(tmp), env=env)
    env['PYTHONPATH'] = str(target)
    work = tmp / 'empty'
    work.mkdir()
    return target, env, work


def test_installed_package_is_used_and_ships_its_configs(installed):
    target, env, work = installed
    out = _run([sys.executable, '-c', f'''
import os
import mmlesion
import mmlesion.cli.make_synthetic
from mmengine.config import Config
from mmlesion.utils.locations import resolve_config
print(os.path.dirname(mmlesion.__file__))
print(os.path.dirname(mmlesion.cli.make_synthetic.__file__))
print(resolve_config({DEMO_CONFIG!r}))
cfg = Config.fromfile(resolve_config({DEMO_CONFIG!r}))  # with its _base_ inheritance
print(cfg.model.type)
'''], cwd=str(work), env=env)
    package_dir, cli_dir, config, model = out.split()[-4:]
    assert package_dir == str(target / 'mmlesion')
    assert cli_dir == str(target / 'mmlesion' / 'cli')
    assert config == str(target / 'mmlesion' / '.mim' / DEMO_CONFIG)
    assert model == 'LesionCenterNet'
    # the packaged configs are a complete copy
    for dirpath, _, files in os.walk(os.path.join(REPO, 'configs')):
        for f in files:
            if f.endswith('.py'):
                rel = os.path.relpath(os.path.join(dirpath, f), REPO)
                assert os.path.isfile(target / 'mmlesion' / '.mim' / rel), rel
    assert not os.path.islink(target / 'mmlesion' / '.mim' / 'configs')


def test_tools_run_on_the_installed_package(installed):
    target, env, work = installed
    out = _run([sys.executable, os.path.join(REPO, 'tools', 'eval_p3d.py'), '--help'],
               cwd=str(work), env=env)
    assert '--ann' in out
    data = work / 'data'
    _run([sys.executable, os.path.join(REPO, 'tools', 'make_synthetic.py'), '--out', str(data),
          '--volumes', '2', '--seed', '1', '--image-size', '96', '--workers', '1', '--quiet'],
         cwd=str(work), env=env)
    _run([sys.executable, os.path.join(REPO, 'tools', 'convert_deeplesion.py'), '--data-root',
          str(data), '--out-dir', str(data / 'annotations')], cwd=str(work), env=env)
    with open(data / 'ground_truth' / 'truth.json') as f:
        key_slices = {(v['series'], les['key_slice']) for v in json.load(f)['volumes']
                      for les in v['lesions'] if les['marked']}
    images = []
    for split in ('train', 'val', 'test'):
        with open(data / 'annotations' / f'{split}.json') as f:
            images += json.load(f)['images']
    assert key_slices and {(im['series'], im['slice_index']) for im in images} == key_slices
    for im in images:
        assert os.path.isfile(data / 'Images_png' / im['file_name'])
