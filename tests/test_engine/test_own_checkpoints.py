"""One's own checkpoints load anywhere: the content hash recorded at save time is recognised
wherever the file lies; one changed byte, or a foreign training checkpoint, is refused."""
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmlesion.engine import (
    OWN_CHECKPOINTS,
    RecordOwnCheckpointsHook,
    UntrustedCheckpointError,
    load_local_checkpoint,
)


def _training_checkpoint(path, seed):
    # like mmengine's: weights plus pickled objects weights-only loading refuses
    torch.manual_seed(seed)
    torch.save(dict(state_dict=dict(w=torch.randn(3)), meta=dict(hist=np.arange(3))), path)


def test_saved_checkpoints_are_recognised_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv('MMLESION_CACHE_DIR', str(tmp_path / 'cache'))
    work = tmp_path / 'work'
    work.mkdir()
    _training_checkpoint(work / 'epoch_1.pth', 0)
    runner = SimpleNamespace(work_dir=str(work), hooks=[])
    calls = []
    real_record = OWN_CHECKPOINTS.record
    monkeypatch.setattr(OWN_CHECKPOINTS, 'record', lambda p: calls.append(p) or real_record(p))
    hook = RecordOwnCheckpointsHook()
    hook.after_train_epoch(runner)
    hook.after_val_epoch(runner)  # unchanged file: not hashed again
    assert calls == [str(work / 'epoch_1.pth')]
    assert os.path.isfile(tmp_path / 'cache' / 'own_checkpoints.json')

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    moved = elsewhere / 'model.pth'
    moved.write_bytes((work / 'epoch_1.pth').read_bytes())
    ckpt = load_local_checkpoint(str(moved))
    assert np.array_equal(ckpt['meta']['hist'], np.arange(3))

    # one byte changed after saving: foreign again
    data = bytearray(moved.read_bytes())
    data[-10] ^= 0xFF
    tampered = elsewhere / 'tampered.pth'
    tampered.write_bytes(bytes(data))
    with pytest.raises(UntrustedCheckpointError, match='own_checkpoints.json'):
        load_local_checkpoint(str(tampered))
    # a training checkpoint this installation never saved
    _training_checkpoint(elsewhere / 'foreign.pth', 1)
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        load_local_checkpoint(str(elsewhere / 'foreign.pth'))

    # a rewritten checkpoint (same name, new content) is recorded again
    _training_checkpoint(work / 'epoch_1.pth', 2)
    os.utime(work / 'epoch_1.pth', ns=(1, 1))
    hook.after_train(runner)
    assert len(calls) == 2 and OWN_CHECKPOINTS.contains(str(work / 'epoch_1.pth'))


def test_no_record_means_weights_only(tmp_path, monkeypatch):
    monkeypatch.setenv('MMLESION_CACHE_DIR', str(tmp_path / 'empty_cache'))
    torch.save(dict(state_dict=dict(w=torch.zeros(2))), tmp_path / 'weights.pth')
    assert not OWN_CHECKPOINTS.contains(str(tmp_path / 'weights.pth'))
    assert torch.equal(load_local_checkpoint(str(tmp_path / 'weights.pth'))['state_dict']['w'],
                       torch.zeros(2))
