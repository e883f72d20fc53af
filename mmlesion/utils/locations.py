"""Where mmlesion finds data and configs: the one module that knows.

Nothing here is relative to a source checkout: relative paths are relative to the current
working directory, and the configs are found next to the installed package.

Environment variables:

- ``MMLESION_SHARED_DATA``: the shared data folder (the real chest CTs under ``real_ct/``, the
  Lesion Harvester annotation releases under ``lesion_harvester/``, ...).
- ``MMLESION_REAL_CT_DIR``: the real CT folder itself (``lung1_image.nrrd``, ``lung1_label.nrrd``,
  ``lung2_image.nrrd``, ``lung2_label.nrrd``); takes precedence over ``MMLESION_SHARED_DATA``.
- ``MMLESION_CACHE_DIR``: mmlesion's cache folder; default ``$XDG_CACHE_HOME/mmlesion``, else
  ``~/.cache/mmlesion``.  ``<cache>/real_ct`` is one of the places the real CT is looked for
  (``tools/fetch_real_ct.py``, :mod:`mmlesion.cli.fetch_real_ct`, puts the files there).

The real CT folder (:func:`find_real_ct_dir`) is the first of: the folder passed explicitly
(``--real-ct-dir``), ``$MMLESION_REAL_CT_DIR``, ``$MMLESION_SHARED_DATA/real_ct``,
``<cache>/real_ct``, ``../shared/data/real_ct`` (relative to the working directory: a checkout
beside the shared data, run from its root) that holds ``lung1_image.nrrd``.

Configs (:func:`resolve_config`): a path that exists (relative to the working directory) is
used as given; otherwise the copy shipped with the package, ``mmlesion/.mim/configs`` (setup.py
copies ``configs/`` there for a regular install and links it for an editable one, the
OpenMMLab ``.mim`` layout), with a leading ``configs/`` dropped.
"""
import os
import os.path as osp
from typing import List, Optional

ENV_SHARED_DATA = 'MMLESION_SHARED_DATA'
ENV_REAL_CT_DIR = 'MMLESION_REAL_CT_DIR'
ENV_CACHE_DIR = 'MMLESION_CACHE_DIR'
REAL_CT_FILES = ('lung1_image.nrrd', 'lung1_label.nrrd', 'lung2_image.nrrd', 'lung2_label.nrrd')
# relative to the working directory: the layout of a checkout beside the shared data
SHARED_DATA_BESIDE_CWD = osp.join('..', 'shared', 'data')


def cache_dir() -> str:
    """mmlesion's cache folder: ``$MMLESION_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmlesion``, else
    ``~/.cache/mmlesion`` (not created here)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return osp.abspath(osp.expanduser(env))
    xdg = os.environ.get('XDG_CACHE_HOME')
    base = xdg if xdg else osp.join(osp.expanduser('~'), '.cache')
    return osp.abspath(osp.join(base, 'mmlesion'))


def real_ct_candidates() -> List[str]:
    """The folders :func:`find_real_ct_dir` looks at when no folder is given, in order."""
    out = []
    env = os.environ.get(ENV_REAL_CT_DIR)
    if env:
        out.append(osp.expanduser(env))
    env = os.environ.get(ENV_SHARED_DATA)
    if env:
        out.append(osp.join(osp.expanduser(env), 'real_ct'))
    out.append(osp.join(cache_dir(), 'real_ct'))
    out.append(osp.abspath(osp.join(SHARED_DATA_BESIDE_CWD, 'real_ct')))
    return out


def _has_real_ct(folder: str) -> bool:
    return osp.isfile(osp.join(folder, REAL_CT_FILES[0]))


def find_real_ct_dir(path: Optional[str] = None) -> str:
    """The folder holding the real chest CTs (``lung1_image.nrrd`` etc.).

    Args:
        path: the folder to use (``--real-ct-dir``); when given it must hold the files.  None
            looks in :func:`real_ct_candidates` (see the module docstring for the order).

    Raises:
        FileNotFoundError: naming every place looked at.
    """
    if path is not None:
        if not _has_real_ct(path):
            raise FileNotFoundError(f'real CT folder {path!r} has no lung1_image.nrrd (expected '
                                    + ', '.join(REAL_CT_FILES) + ')')
        return os.fspath(path)
    tried = real_ct_candidates()
    for cand in tried:
        if _has_real_ct(cand):
            return cand
    raise FileNotFoundError(
        'real CT volumes (lung1_image.nrrd, ...) not found in ' + ', '.join(tried)
        + f': pass --real-ct-dir DIR, or set {ENV_REAL_CT_DIR} to that folder or '
        f'{ENV_SHARED_DATA} to the folder holding real_ct/, or fetch them into '
        f'{osp.join(cache_dir(), "real_ct")} with tools/fetch_real_ct.py')


def packaged_configs_dir() -> str:
    """``mmlesion/.mim/configs`` of the imported package (may not exist: a plain checkout)."""
    package_dir = osp.dirname(osp.dirname(osp.abspath(__file__)))
    return osp.join(package_dir, '.mim', 'configs')


def resolve_config(path: str) -> str:
    """A config file: ``path`` itself when it exists, else the copy shipped with the package.

    Args:
        path: e.g. ``configs/synthetic/x.py`` (relative to the working directory) or
            ``synthetic/x.py``; the packaged copy is looked up with a leading ``configs/``
            dropped.

    Raises:
        FileNotFoundError: neither exists (both named).
    """
    path = os.fspath(path)
    if osp.isfile(path):
        return path
    parts = [p for p in osp.normpath(path).split(os.sep) if p not in ('', '.')]
    if parts and parts[0] == 'configs':
        parts = parts[1:]
    packaged = osp.join(packaged_configs_dir(), *parts) if parts else None
    if packaged is not None and not osp.isabs(path) and '..' not in parts \
            and osp.isfile(packaged):
        return packaged
    raise FileNotFoundError(f'config {path!r} not found (looked at {osp.abspath(path)} and '
                            f'{packaged or packaged_configs_dir()})')
