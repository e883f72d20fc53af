"""Install mmlesion (an MMDetection 3.x plugin).  No torch import here: it breaks isolated builds."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


def read_version():
    with open(os.path.join(HERE, 'mmlesion', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='mmlesion',
    version=read_version(),
    description='Universal lesion detection and lesion harvesting (Lesion Harvester, DeepLesion) '
    'for MMDetection 3.x',
    long_description=open(os.path.join(HERE, 'README.md')).read()
    if os.path.exists(os.path.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.8',
    # torch is deliberately not listed: an open "torch" requirement pulls a multi-GB CUDA build on
    # CPU machines.  Install torch first (README), then mmcv with ops, then this package.
    install_requires=read_requirements('runtime.txt') + read_requirements('mminstall.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
