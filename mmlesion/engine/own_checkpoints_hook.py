"""Record the content hash of every checkpoint a training saves (see
:class:`mmlesion.engine.checkpoint.OwnCheckpoints`), so the user's own checkpoints load in any
tool, from any folder, without ``--trust-checkpoint``."""
import glob
import os
import os.path as osp
from typing import Dict, Optional, Set, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook

from mmdet.registry import HOOKS

from .checkpoint import OWN_CHECKPOINTS

__all__ = ['RecordOwnCheckpointsHook']


@HOOKS.register_module()
class RecordOwnCheckpointsHook(Hook):
    """After each epoch, validation and at the end of training, record the checkpoints that the
    ``CheckpointHook`` wrote or rewrote since the last look (``*.pth`` of its ``out_dir`` and of
    the work dir; a file is re-hashed only when its size or modification time changed).

    ``tools/train.py`` adds it to every training.  Runs after the checkpoint hook (lowest
    priority) and on the main process only (the one that saves).
    """
    priority = 'LOWEST'

    def __init__(self) -> None:
        self._seen: Dict[str, Tuple[int, int]] = {}

    def _folders(self, runner) -> Set[str]:
        folders = {runner.work_dir}
        for hook in runner.hooks:
            out_dir: Optional[str] = getattr(hook, 'out_dir', None)
            if isinstance(hook, CheckpointHook) and out_dir and '://' not in str(out_dir):
                folders.add(out_dir)
        return {f for f in folders if f and osp.isdir(f)}

    def _record_new(self, runner) -> None:
        if not is_main_process():
            return
        for folder in sorted(self._folders(runner)):
            for path in sorted(glob.glob(osp.join(folder, '*.pth'))):
                st = os.stat(path)
                stamp = (st.st_size, st.st_mtime_ns)
                if self._seen.get(path) != stamp:
                    OWN_CHECKPOINTS.record(path)
                    self._seen[path] = stamp

    def after_train_epoch(self, runner) -> None:
        self._record_new(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._record_new(runner)

    def after_train(self, runner) -> None:
        self._record_new(runner)
