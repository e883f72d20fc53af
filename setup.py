"""Install mmlesion (an MMDetection 3.x plugin).  No torch import here: it breaks isolated builds.

The configs ship with the package, as in OpenMMLab's packages: a regular build (wheel, sdist,
``pip install .``) copies ``configs/`` to ``mmlesion/.mim/configs`` and installs it as package
data; an editable install (``pip install -e .``) links ``mmlesion/.mim/configs`` to
``configs/`` instead, so edits show at once.  ``mmlesion.utils.locations.resolve_config`` finds
a config there when the path given does not exist (e.g. outside a checkout).
"""
import os
import re
import shutil
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
MIM_DIR = os.path.join(HERE, 'mmlesion', '.mim')
MIM_FILES = ('configs', )  # relative to HERE; each lands under mmlesion/.mim/


def read_requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


def read_version():
    with open(os.path.join(HERE, 'mmlesion', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def add_mim_extension():
    """Put ``configs/`` under ``mmlesion/.mim``: a link for an editable install, a copy for a
    regular build (both rebuilt each time, so no stale copy survives); other setup.py commands
    (metadata, egg_info) leave it as it is."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist', 'build', 'build_py', 'install')):
        mode = 'copy'
    else:
        return
    os.makedirs(MIM_DIR, exist_ok=True)
    for name in MIM_FILES:
        src = os.path.join(HERE, name)
        tar = os.path.join(MIM_DIR, name)
        if os.path.islink(tar) or os.path.isfile(tar):
            os.remove(tar)
        elif os.path.isdir(tar):
            shutil.rmtree(tar)
        if not os.path.exists(src):
            continue
        if mode == 'symlink':
            try:
                os.symlink(os.path.relpath(src, MIM_DIR), tar, target_is_directory=True)
                continue
            except OSError:  # no symlinks (some Windows set-ups): copy instead
                pass
        shutil.copytree(src, tar, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def mim_package_data():
    """The files under ``mmlesion/.mim`` (relative to the package) when they are a copy."""
    out = []
    for name in MIM_FILES:
        top = os.path.join(MIM_DIR, name)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for dirpath, dirnames, files in os.walk(top):
            dirnames.sort()
            out += sorted(os.path.relpath(os.path.join(dirpath, f), os.path.dirname(MIM_DIR))
                          for f in files)
    return out


add_mim_extension()

setup(
    name='mmlesion',
    version=read_version(),
    description='Universal lesion detection and lesion harvesting (Lesion Harvester, DeepLesion) '
    'for MMDetection 3.x',
    long_description=open(os.path.join(HERE, 'README.md')).read()
    if os.path.exists(os.path.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    package_data={'mmlesion': mim_package_data()},
    python_requires='>=3.8',
    # torch is deliberately not listed: an open "torch" requirement pulls a multi-GB CUDA build on
    # CPU machines.  Install torch first (README), then mmcv with ops, then this package.
    install_requires=read_requirements('runtime.txt') + read_requirements('mminstall.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
