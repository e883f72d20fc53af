"""Checkpoint loading under torch's weights-only unpickling (torch >= 2.6).

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch 2.13 then refuses the
checkpoints mmengine itself writes (they hold ``HistoryBuffer``, numpy arrays and ``getattr``
references in ``message_hub``), so ``--resume`` breaks.  Allow-listing ``builtins.getattr`` would
defeat weights-only loading, so mmlesion trusts by *origin* instead:

* a checkpoint inside a trusted directory (the run's own ``work_dir``, which this code wrote, or a
  directory the user names with ``--trust-checkpoint``) is fully unpickled;
* anything else (a downloaded file, a torchvision state dict) is loaded weights-only; if that fails
  the error says how to proceed instead of executing the file's pickled code.

``import mmlesion`` replaces mmengine's loader for local paths (scheme prefix ``''``) with
:func:`load_local_checkpoint`.
"""
import os
import os.path as osp
import pickle
from typing import List

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_TRUSTED_DIRS: List[str] = []


def trust_checkpoint_dir(path: str) -> None:
    """Fully unpickle checkpoints found under ``path`` (a directory, or a file's directory)."""
    path = osp.realpath(osp.expanduser(path))
    if osp.isfile(path):
        path = osp.dirname(path)
    if path not in _TRUSTED_DIRS:
        _TRUSTED_DIRS.append(path)


def trusted_dirs() -> List[str]:
    return list(_TRUSTED_DIRS)


def is_trusted(filename: str) -> bool:
    real = osp.realpath(osp.expanduser(filename))
    return any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in _TRUSTED_DIRS)


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint outside the trusted directories holds more than weights."""


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine loader for local files: full unpickling only for trusted directories."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if is_trusted(filename):
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
            'objects besides tensors (an mmengine training checkpoint does) and is outside the '
            f'trusted directories {_TRUSTED_DIRS or "[]"}. If you trust it (you trained it), pass '
            '--trust-checkpoint to the tool, or strip it to weights with '
            'tools/publish_checkpoint.py.') from err


def install_checkpoint_loader() -> None:
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
