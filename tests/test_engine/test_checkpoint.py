import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmlesion  # noqa: F401  (installs the loader)
from mmlesion.engine import checkpoint as ckpt_mod
from mmlesion.engine import (UntrustedCheckpointError, is_trusted, publish_checkpoint,
                             trust_checkpoint_dir)


@pytest.fixture(autouse=True)
def _isolated_trust_list(monkeypatch):
    monkeypatch.setattr(ckpt_mod, '_TRUSTED_DIRS', [])


def _training_checkpoint(path):
    """What mmengine writes: weights plus a message hub with HistoryBuffer and numpy objects."""
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    torch.save({'meta': {'epoch': 3, 'iter': 30, 'seed': np.int64(7), 'dataset_meta': {'classes': ('lesion',)}},
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
    assert out['meta'] == {'epoch': 3, 'iter': 30, 'seed': 7, 'dataset_meta': {'classes': ('lesion',)}}
    assert _load_checkpoint(str(dst), map_location='cpu')['meta']['epoch'] == 3
