"""The two-stage 3D false-positive reduction end to end on tiny synthetic volumes: the volume
scan's tracklets (stage 1, here the oracle detector) re-scored by a 3D LPC on (25, 60, 60) cubes
(stage 2, ``VolumeScanTestLoop(rescore=...)``): every proposal re-scored once, boxes kept,
``s = s_g * s_c``, and P3D (``tools/eval_p3d.py``) reads the output."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.cli.eval_p3d import main as eval_p3d_main
from mmlesion.evaluation.detection_io import load_lh_detections
from mmlesion.utils.fileio import atomic_dump_pickle
from mmlesion.utils.safe_pickle import load_pickle


def _lpc_config(tmp_path):
    """A tiny 3D LPC config file (ResNet3D at 4 channels, the seed's cube) and a checkpoint of
    its seeded random weights."""
    text = '''default_scope = 'mmdet'
model = dict(type='LPC3D',
             data_preprocessor=dict(type='LPCDataPreprocessor', mean=117.0, std=57.6),
             backbone=dict(type='ResNet3D', depth=18, in_channels=1, base_channels=4))
test_dataloader = dict(dataset=dict(type='ProposalPatchDataset', mode='cube',
                                    patch_size=(25, 60, 60), pad_px=32,
                                    pipeline=[dict(type='PackLPCInputs')]))
'''
    path = tmp_path / 'lpc3d_tiny.py'
    path.write_text(text)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(path)).model)
    ckpt = tmp_path / 'lpc3d_tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return str(path), str(ckpt)


def _scan(cfg):
    runner = Runner.from_cfg(Config(cfg))
    return runner, runner.test()


def test_two_stage_rescores_every_proposal_once_and_keeps_boxes(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle,
        one_torch_thread):
    root = synthetic_converted
    full, keys = complete_gt_pickle
    keys = keys[:3]
    ann = str(tmp_path / 'three_volumes.pkl')  # P3D's FP denominator: these 3 volumes
    atomic_dump_pickle({k: v for k, v in load_pickle(full).items()
                        if k[:-len('.annot')] in keys}, ann, protocol=2)
    oracle = dict(type='OracleLesionDetector',
                  truth_file=str(root / 'ground_truth' / 'truth.json'))
    lpc_config, lpc_ckpt = _lpc_config(tmp_path)

    det_1 = tmp_path / 'stage1.pkl'
    _, m1 = _scan(volume_scan_config(root, tmp_path / 'w1', oracle,
                                     dict(type='P3DMetric', det_out=str(det_1)),
                                     ann_file=ann))
    det_2 = tmp_path / 'two_stage.pkl'
    runner, m2 = _scan(volume_scan_config(
        root, tmp_path / 'w2', oracle, dict(type='P3DMetric', det_out=str(det_2)),
        ann_file=ann,
        rescore=dict(config=lpc_config, checkpoint=lpc_ckpt, batch_size=4)))
    rescorer = runner.test_loop.rescorer
    stage1, stage2 = load_lh_detections(det_1), load_lh_detections(det_2)
    n_proposals = sum(len(v) for v in stage1.values())
    assert n_proposals >= 3
    assert rescorer.num_classified == n_proposals  # each proposal classified once
    assert sorted(stage2) == sorted(stage1)
    for key in stage1:
        assert len(stage2[key]) == len(stage1[key])
        for t1, t2 in zip(stage1[key], stage2[key]):
            z1, b1 = zip(*t1)
            z2, b2 = zip(*t2)
            assert z1 == z2
            b1, b2 = np.array(b1), np.array(b2)
            np.testing.assert_allclose(b2[:, :4], b1[:, :4], atol=1e-4)  # boxes kept
            ratio = b2[:, 4] / b1[:, 4]  # one s_c per tracklet: the same on every slice
            assert 0 < ratio.min() and ratio.max() < 1
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    # the metrics scored the re-scored tracklets, and tools/eval_p3d.py reads the file alike
    summary = eval_p3d_main(['--ann', ann, '--det', str(det_2)])
    assert summary['ap'] == pytest.approx(m2['p3d/AP'])
    # the oracle's hits stay hits: s_c only reorders them among themselves
    assert m1['p3d/AP'] == pytest.approx(1.0)
    assert m2['p3d/sens@16'] == pytest.approx(1.0)


def test_rescore_settings_are_checked(synthetic_converted, tmp_path, volume_scan_config,
                                      complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    oracle = dict(type='OracleLesionDetector',
                  truth_file=str(root / 'ground_truth' / 'truth.json'))
    lpc_config, _ = _lpc_config(tmp_path)
    with pytest.raises(ValueError, match='rescore must be dict'):
        _scan(volume_scan_config(root, tmp_path / 'w', oracle, dict(type='P3DMetric'),
                                 ann_file=ann, rescore=dict(config=lpc_config, ckpt='x')))
    with pytest.raises(FileNotFoundError, match='rescore checkpoint not found'):
        _scan(volume_scan_config(root, tmp_path / 'w', oracle, dict(type='P3DMetric'),
                                 ann_file=ann, rescore=dict(config=lpc_config,
                                                            checkpoint=str(tmp_path / 'no.pth'))))
