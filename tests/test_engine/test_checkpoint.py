import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, load_from_local

import mmlesion  # noqa: F401  (installs the loader)
from mmlesion.engine import (
    UntrustedCheckpointError,
    install_checkpoint_loader,
    is_trusted,
    load_local_checkpoint,
    publish_checkpoint,
    trust_checkpoint_dir,
    trusted_dirs,
)
from mmlesion.engine.checkpoint import TRUSTED_DIRS


@pytest.fixture(autouse=True)
def _isolated_trust_list():
    """Each test starts with no trusted directory; what it trusts ends with it."""
    with TRUSTED_DIRS.scoped():
        TRUSTED_DIRS._dirs.clear()
        yield


def _training_checkpoint(path):
    """What mmengine writes: weights plus a message hub with HistoryBuffer and numpy objects."""
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    meta = {'epoch': 3, 'iter': 30, 'seed': np.int64(7), 'dataset_meta': {'classes': ('lesion',)}}
    torch.save({'meta': meta,
                'state_dict': {'w': torch.arange(4.0)},
                'message_hub': {'log_scalars': {'loss': buf}},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01}]}}, path)


def test_untrusted_training_checkpoint_is_refused_with_advice(tmp_path):
    path = tmp_path / 'elsewhere' / 'epoch_3.pth'
    path.parent.mkdir()
    _training_checkpoint(path)
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        _load_checkpoint(str(path), map_location='cpu')


def test_checkpoint_in_trusted_work_dir_resumes(tmp_path):
    work_dir = tmp_path / 'work_dir'
    (work_dir / 'sub').mkdir(parents=True)
    path = work_dir / 'sub' / 'epoch_3.pth'
    _training_checkpoint(path)
    trust_checkpoint_dir(str(work_dir))
    assert is_trusted(str(path))
    assert not is_trusted(str(tmp_path / 'work_dir_other' / 'x.pth'))  # prefix is not containment
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['epoch'] == 3
    assert isinstance(ckpt['message_hub']['log_scalars']['loss'], HistoryBuffer)


def test_plain_state_dict_loads_weights_only_anywhere(tmp_path):
    path = tmp_path / 'densenet121.pth'
    torch.save({'features.conv0.weight': torch.ones(2, 3)}, path)
    assert _load_checkpoint(str(path), map_location='cpu')['features.conv0.weight'].sum() == 6


def test_published_checkpoint_is_weights_only_loadable(tmp_path):
    src = tmp_path / 'epoch_3.pth'
    _training_checkpoint(src)
    dst = tmp_path / 'published.pth'
    publish_checkpoint(str(src), str(dst))
    out = torch.load(dst, weights_only=True)
    assert torch.equal(out['state_dict']['w'], torch.arange(4.0))
    assert out['meta'] == {'epoch': 3, 'iter': 30, 'seed': 7,
                           'dataset_meta': {'classes': ('lesion',)}}
    assert _load_checkpoint(str(dst), map_location='cpu')['meta']['epoch'] == 3


def test_trust_is_scoped(tmp_path):
    trust_checkpoint_dir(str(tmp_path / 'a'))
    with TRUSTED_DIRS.scoped(str(tmp_path / 'b')):
        trust_checkpoint_dir(str(tmp_path / 'c'))
        assert [p.rsplit('/', 1)[1] for p in trusted_dirs()] == ['a', 'b', 'c']
    assert trusted_dirs() == [str((tmp_path / 'a').resolve())]
    assert not is_trusted(str(tmp_path / 'b' / 'epoch_1.pth'))


def test_loader_override_is_installed_and_can_be_undone(tmp_path):
    """``import mmlesion`` owns local paths only; the module docstring's undo line restores
    mmengine's loader (which unpickles anything, so the untrusted checkpoint loads)."""
    assert CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'x.pth')) is load_local_checkpoint
    assert CheckpointLoader._get_checkpoint_loader('https://x/y.pth') is not load_local_checkpoint
    path = tmp_path / 'epoch_3.pth'
    _training_checkpoint(path)
    try:
        CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
        assert CheckpointLoader._get_checkpoint_loader(str(path)) is load_from_local
    finally:
        install_checkpoint_loader()
    assert CheckpointLoader._get_checkpoint_loader(str(path)) is load_local_checkpoint
