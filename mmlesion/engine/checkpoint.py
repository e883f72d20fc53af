"""Checkpoint loading under torch's weights-only unpickling (torch >= 2.6).

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch 2.13 then refuses the
checkpoints mmengine itself writes (they hold ``HistoryBuffer``, numpy arrays and ``getattr``
references in ``message_hub``), so ``--resume`` breaks.  Allow-listing ``builtins.getattr`` would
defeat weights-only loading, so mmlesion trusts by *origin* instead:

* a checkpoint inside a trusted directory (the run's own ``work_dir``, which this code wrote, or a
  directory the user names with ``--trust-checkpoint``) is fully unpickled;
* so is a checkpoint this installation saved, wherever it lies now: training records each saved
  file's SHA-256 in a per-user record (:class:`OwnCheckpoints`), and a file whose bytes still
  hash to a recorded value is one's own (one changed byte, and it is foreign again);
* anything else (a downloaded file, a torchvision state dict) is loaded weights-only; if that fails
  the error says how to proceed instead of executing the file's pickled code.

Process-wide state, and why it is process-wide
----------------------------------------------
mmengine gives a checkpoint loader no context: ``Runner.load_checkpoint`` / ``resume``,
``mmengine.runner.load_checkpoint`` and ``_load_checkpoint`` all call
``CheckpointLoader.load_checkpoint(filename, map_location)``, which picks the loader from
``CheckpointLoader._schemes``, a class attribute, by the path's prefix.  So:

* **The loader override** (:func:`install_checkpoint_loader`, called by ``import mmlesion``)
  re-registers the scheme prefix ``''`` (local paths; mmengine's ``load_from_local``) to
  :func:`load_local_checkpoint`, for the whole process and every Runner in it.  Remote schemes
  (``http(s)://``, ``open-mmlab://``, ``s3://``, ...) keep mmengine's loaders.  It is idempotent.
  To undo it (tests, or a program that wants mmengine's plain ``torch.load``)::

      from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
      CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)

* **The trusted directories** (:data:`TRUSTED_DIRS`, a :class:`TrustedDirs`) must be reachable
  from that argument-less loader, hence one registry per process.  The tools add the run's
  ``work_dir`` and any ``--trust-checkpoint`` path before the Runner loads anything, and a tool
  runs one training or test per process.  Code that wants the trust to end (tests, a library
  running several jobs) scopes it: ``with TRUSTED_DIRS.scoped(): trust_checkpoint_dir(...)``
  restores the previous list on exit.
"""
import contextlib
import json
import os
import os.path as osp
import pickle
import time
from typing import Iterator, List

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from mmlesion.utils.fileio import file_sha256


class TrustedDirs:
    """Directories whose checkpoints are fully unpickled (realpaths, in the order added)."""

    def __init__(self) -> None:
        self._dirs: List[str] = []

    def add(self, path: str) -> None:
        """Trust ``path`` (a directory, or a file's directory)."""
        path = osp.realpath(osp.expanduser(path))
        if osp.isfile(path):
            path = osp.dirname(path)
        if path not in self._dirs:
            self._dirs.append(path)

    def dirs(self) -> List[str]:
        return list(self._dirs)

    def contains(self, filename: str) -> bool:
        """Whether ``filename`` lies in a trusted directory (containment, not a name prefix)."""
        real = osp.realpath(osp.expanduser(filename))
        return any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in self._dirs)

    @contextlib.contextmanager
    def scoped(self, *paths: str) -> Iterator['TrustedDirs']:
        """Trust ``paths`` (and whatever is added inside the block) until the block ends; the list
        held before is restored on exit."""
        saved = list(self._dirs)
        try:
            for path in paths:
                self.add(path)
            yield self
        finally:
            self._dirs[:] = saved


# Process-wide on purpose (module docstring): mmengine calls the loader with (filename,
# map_location) only, so the trust list cannot travel with a Runner.  Scope it with
# ``TRUSTED_DIRS.scoped()``.
TRUSTED_DIRS = TrustedDirs()


def trust_checkpoint_dir(path: str) -> None:
    """Fully unpickle checkpoints found under ``path`` (a directory, or a file's directory), for
    the rest of the process (or of the enclosing ``TRUSTED_DIRS.scoped()`` block)."""
    TRUSTED_DIRS.add(path)


def trusted_dirs() -> List[str]:
    return TRUSTED_DIRS.dirs()


def is_trusted(filename: str) -> bool:
    return TRUSTED_DIRS.contains(filename)


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint outside the trusted directories holds more than weights."""


class OwnCheckpoints:
    """The per-user record of checkpoints this installation wrote, by content hash.

    Training through ``tools/train.py`` records the SHA-256 of every checkpoint it saves
    (:class:`~mmlesion.engine.own_checkpoints_hook.RecordOwnCheckpointsHook`) in
    ``<cache>/own_checkpoints.json`` (:func:`mmlesion.utils.locations.cache_dir`;
    ``$MMLESION_CACHE_DIR`` moves it).  A file whose bytes hash to a recorded value is one's own
    training output wherever it now lies, so it is fully unpickled without
    ``--trust-checkpoint``; changing one byte of it changes the hash, and it is treated as
    foreign again.  The record file's location is read at each call, so an environment change
    takes effect at once.
    """

    FILE_NAME = 'own_checkpoints.json'

    @property
    def path(self) -> str:
        from mmlesion.utils.locations import cache_dir
        return osp.join(cache_dir(), self.FILE_NAME)

    def _load(self) -> dict:
        try:
            with open(self.path, encoding='utf-8') as f:
                data = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def record(self, filename: str) -> str:
        """Record ``filename``'s content hash (atomic rewrite of the record); returns it."""
        from mmlesion.utils.fileio import atomic_dump_json
        digest = file_sha256(filename)
        data = self._load()
        data[digest] = dict(path=osp.realpath(filename), size=osp.getsize(filename),
                            recorded=time.strftime('%Y-%m-%dT%H:%M:%S'))
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        atomic_dump_json(data, self.path, indent=1)
        return digest

    def contains(self, filename: str) -> bool:
        """Whether ``filename``'s bytes are those of a recorded checkpoint."""
        data = self._load()
        return bool(data) and file_sha256(filename) in data


# Process-wide like TRUSTED_DIRS (the argument-less loader must reach it); its state is the
# record file, read at each call.
OWN_CHECKPOINTS = OwnCheckpoints()


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine loader for local files: full unpickling only for trusted directories."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if is_trusted(filename) or OWN_CHECKPOINTS.contains(filename):
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        # torch's message is long; the line naming the refused global is the useful one
        first_line = next((ln for ln in lines if 'Unsupported global' in ln),
                          lines[0] if lines else repr(err))
        raise UntrustedCheckpointError(
            f'{filename}: weights-only loading refused it ({first_line}). The file holds pickled '
            'objects besides tensors (an mmengine training checkpoint does), is outside the '
            f'trusted directories {trusted_dirs()} and is not a checkpoint this installation '
            f'saved ({OWN_CHECKPOINTS.path} has no record of its content, or it changed since). '
            'If you trust it, pass --trust-checkpoint to the tool, or strip it to weights with '
            'tools/publish_checkpoint.py.') from err


def install_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local paths, process-wide.

    Called by ``import mmlesion``.  It has to be process-wide: mmengine looks loaders up in the
    class attribute ``CheckpointLoader._schemes`` and offers no per-Runner choice.  It replaces
    only the scheme prefix ``''`` (mmengine's ``load_from_local``); the module docstring shows the
    one line that undoes it.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)


_DROP = object()


def _plain(obj):
    """``obj`` reduced to what weights-only unpickling accepts (containers of str/int/float/bool/
    None); anything else becomes ``_DROP`` and is left out of its container."""
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, (list, tuple)):
        items = [v for v in map(_plain, obj) if v is not _DROP]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        kept = {str(k): _plain(v) for k, v in obj.items()}
        return {k: v for k, v in kept.items() if v is not _DROP}
    if hasattr(obj, 'item') and getattr(obj, 'ndim', None) == 0:  # numpy / torch scalars
        return obj.item()
    return _DROP


def publish_checkpoint(src: str, dst: str) -> dict:
    """Write ``src`` (a trusted mmengine checkpoint) as weights + plain metadata to ``dst``.

    The result loads under ``torch.load(weights_only=True)``: optimizer state, message hub and
    numpy objects are dropped.  Returns the saved dict.
    """
    from mmlesion.utils import atomic_open
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    state_dict = ckpt.get('state_dict', ckpt)
    meta = _plain(ckpt.get('meta', {}))
    out = {'state_dict': {k: v.detach().cpu() for k, v in state_dict.items()},
           'meta': meta if meta is not _DROP else {}}
    with atomic_open(dst, 'wb') as f:
        torch.save(out, f)
    return out
