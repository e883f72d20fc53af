"""VolumeScanTestLoop on synthetic DeepLesion-format data: an oracle model that returns each
slice's true lesion boxes must score P3D AP 1 / sensitivity 1, every PNG is decoded once, the
LH-format output round-trips through tools/eval_p3d.py, and a real CenterNet's boxes come back in
the original slice frame."""
import copy
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmdet.registry import LOOPS
from mmlesion.apis import split_test_pipeline
from mmlesion.cli.eval_p3d import main as eval_p3d_main
from mmlesion.datasets.transforms import LoadMultiSliceFromFile, PackLesionInputs, RescaleToSpacing
from mmlesion.engine import VolumeScanTestLoop
from mmlesion.evaluation.detection_io import load_lh_detections
from mmlesion.utils.safe_pickle import load_pickle


def _num_pngs(root, keys):
    n = 0
    for key in keys:
        series, rng = key[:12], key[13:]
        first, last = (int(v) for v in rng.split('-'))
        n += sum(osp.isfile(root / 'Images_png' / series / f'{z:03d}.png')
                 for z in range(first, last + 1))
    return n


def _runner(cfg):
    return Runner.from_cfg(Config(cfg))


def test_loop_is_registered_and_splits_the_pipeline(volume_scan_config):
    assert LOOPS.get('VolumeScanTestLoop') is VolumeScanTestLoop
    cfg = volume_scan_config('.', '.', None, None)
    loader, rest = split_test_pipeline(cfg['test_dataloader']['dataset']['pipeline'])
    assert isinstance(loader, LoadMultiSliceFromFile) and loader.num_slices == 9
    assert [type(t) for t in rest] == [RescaleToSpacing, PackLesionInputs]
    with pytest.raises(ValueError, match='LoadMultiSliceFromFile'):
        split_test_pipeline([dict(type='PackLesionInputs')])


def test_oracle_scan_scores_one_and_decodes_each_png_once(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    det_out = tmp_path / 'det.pkl'
    runner = _runner(volume_scan_config(
        root, tmp_path / 'work',
        dict(type='OracleLesionDetector', truth_file=str(root / 'ground_truth' / 'truth.json')),
        [dict(type='P3DMetric', det_out=str(det_out), json_out=str(tmp_path / 'p3d.json')),
         dict(type='IoU3DMetric', ann_file=str(root / 'ground_truth' / '3D-Box.pkl'))],
        ann_file=ann, show_dir=str(tmp_path / 'show')))
    metrics = runner.test()
    loop = runner.test_loop
    # the pickle carries no spacing: it came from <data_root>/DL_info.csv
    assert all(v.has_spacing for v in loop.all_volumes)
    assert [v.key for v in loop.all_volumes] == keys
    assert metrics['p3d/AP'] == pytest.approx(1.0)
    for t in ('0.125', '0.25', '0.5', '1', '2', '4', '8', '16'):
        assert metrics[f'p3d/sens@{t}'] == pytest.approx(1.0)
    # every PNG of the scanned volumes decoded exactly once, every slice seen once
    n_png = _num_pngs(root, keys)
    assert loop.num_decoded == n_png == loop.num_slices
    seen = runner.model.seen
    assert len(seen) == n_png and len({(v, z) for v, z, *_ in seen}) == n_png
    # inputs are the rescaled 9-slice windows; the metainfo says how to map back
    for _, _, shape, scale, ori in seen[:5]:
        assert shape[0] == 9
        assert shape[1] == round(ori[0] * scale[1]) and shape[2] == round(ori[1] * scale[0])
    # 3D IoU on the 3 test volumes of 3D-Box.pkl (5 other scanned volumes ignored)
    assert 0.0 < metrics['iou3d/AP'] <= 1.0
    # one overlay per volume
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'show' / '*.png'))) == \
        [k + '.png' for k in keys]

    # --out round trip: the LH-format file scores the same through tools/eval_p3d.py
    raw = load_pickle(det_out)
    assert sorted(raw) == keys
    z_rel = [z for trks in raw.values() for trk in trks for z, _ in trk]
    assert min(z_rel) >= 0 and max(z_rel) <= 39  # relative z
    summary = eval_p3d_main(['--ann', ann, '--det', str(det_out)])
    assert summary['ap'] == pytest.approx(metrics['p3d/AP'])
    assert summary['sensitivity'] == pytest.approx(
        [metrics[f'p3d/sens@{t:g}'] for t in summary['fps']])
    with open(tmp_path / 'p3d.json') as f:
        written = json.load(f)
    assert written['ap'] == pytest.approx(1.0) and written['fp_denominator'] == len(keys)
    # frames: the file is 1-based; loading it back gives the oracle's 0-based key-slice boxes
    # (score 0.9; boxes on bridged gaps are interpolated, so only those are compared)
    back = load_lh_detections(det_out)
    truth_boxes = runner.model.boxes
    n_key = 0
    for key, trks in back.items():
        for trk in trks:
            for z, box in trk:
                if box[4] > 0.8:
                    n_key += 1
                    assert any(np.allclose(box, b, atol=1e-4) for b in truth_boxes[(key, z)])
    assert n_key == 21  # one per lesion of the 8 volumes


def test_cross_volume_passes_in_the_loop(synthetic_converted, tmp_path, volume_scan_config):
    """``test_cfg.cross_volume``: passes of 4 slices filled across volumes (the training split
    holds two volumes resized alike); every slice is predicted once and its boxes reach its own
    volume: the metrics equal the per-volume scan's."""
    root = synthetic_converted
    ann = str(root / 'annotations' / 'train.json')
    runs = {}
    for cross in (False, True):
        runner = _runner(volume_scan_config(
            root, tmp_path / f'work{cross}',
            dict(type='OracleLesionDetector',
                 truth_file=str(root / 'ground_truth' / 'truth.json')),
            [dict(type='P3DMetric')], ann_file=ann, cross_volume=cross, amp_dtype='bf16',
            resume=False))
        runs[cross] = runner.test(), runner.test_loop, runner.model
    (plain, _, _), (metrics, loop, model) = runs[False], runs[True]
    assert loop.predictor.cross_volume and loop.predictor.amp_dtype == 'bf16'
    assert metrics == plain and metrics['p3d/AP'] > 0.5
    keys = [v.key for v in loop.all_volumes]
    n_png = _num_pngs(root, keys)
    assert loop.num_slices == n_png == sum(map(len, model.passes))
    assert len({(v, z) for v, z, *_ in model.seen}) == n_png
    assert any(len(set(p)) > 1 for p in model.passes)  # some passes hold two volumes
    assert not any(len(set(p)) > 1 for p in runs[False][2].passes)


def test_restricting_volumes_and_missing_spacing(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    runner = _runner(volume_scan_config(
        root, tmp_path / 'work',
        dict(type='OracleLesionDetector', truth_file=str(root / 'ground_truth' / 'truth.json')),
        dict(type='P3DMetric'), ann_file=ann, volumes=keys[:2]))
    metrics = runner.test()
    assert [v.key for v in runner.test_loop.all_volumes] == keys[:2]
    assert metrics['p3d/AP'] == pytest.approx(1.0)
    assert runner.test_loop.num_decoded == _num_pngs(root, keys[:2])

    # no DL_info.csv and no JSON covering the series: a clear error naming the volumes
    bare = tmp_path / 'bare'
    bare.mkdir()
    (bare / 'Images_png').symlink_to(root / 'Images_png')
    oracle = dict(type='OracleLesionDetector',
                  truth_file=str(root / 'ground_truth' / 'truth.json'))
    runner = _runner(volume_scan_config(bare, tmp_path / 'work2', oracle,
                                        dict(type='P3DMetric'), ann_file=ann))
    with pytest.raises(ValueError, match='no pixel spacing.*series_info'):
        runner.test()
    runner = _runner(volume_scan_config(bare, tmp_path / 'work3', oracle,
                                        dict(type='P3DMetric'), ann_file=ann, volumes=keys[:1],
                                        series_info=str(root / 'DL_info.csv')))
    assert runner.test()['p3d/AP'] == pytest.approx(1.0)


def test_worker_processes_prepare_the_same_inputs(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    outs = []
    for workers in (0, 2):
        runner = _runner(volume_scan_config(
            root, tmp_path / f'work{workers}',
            dict(type='OracleLesionDetector', truth_file=str(root / 'ground_truth' / 'truth.json')),
            dict(type='P3DMetric', det_out=str(tmp_path / f'det{workers}.pkl')),
            ann_file=ann, volumes=keys[:4], num_workers=workers))
        runner.test()
        # decodes happen in the workers; the loop still counts them from the items
        assert runner.test_loop.num_decoded == _num_pngs(root, keys[:4])
        outs.append(load_pickle(tmp_path / f'det{workers}.pkl'))
    assert outs[0] == outs[1]


TINY_MODEL = dict(
    type='CenterNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[50.0], std=[1.0],
                           bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='DenseNet25D', num_slice_groups=3, in_channels_per_group=3,
                  growth_rate=8, block_config=(1, 1, 1), num_init_features=16,
                  out_indices=(0, 1, 2), fusion_levels=(2, )),
    neck=dict(type='LesionFPNUpsample', in_channels=[24, 20, 18], out_channels=16,
              feat_channels=16),
    bbox_head=dict(type='CenterNetHNSLHead', num_classes=1, in_channels=16, feat_channels=16,
                   loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
                   loss_wh=dict(type='L1Loss', loss_weight=0.1),
                   loss_offset=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(topk=10, local_maximum_kernel=3, max_per_img=10))


def test_real_centernet_boxes_come_back_in_the_original_frame(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    init_default_scope('mmdet')
    torch.manual_seed(0)
    runner = _runner(volume_scan_config(root, tmp_path / 'work', copy.deepcopy(TINY_MODEL),
                                        dict(type='P3DMetric'), ann_file=ann, volumes=keys[:1],
                                        score_thr=0.0))
    loop = runner.build_test_loop(runner._test_loop)
    model = runner.model
    model.eval()
    item = loop.inputs[0]
    pred = loop.scan_item(item)
    # the same mini-batch as the loop's (conv kernels may round differently per batch size)
    start = (len(item['slices']) // 2) // loop.predictor.batch_size * loop.predictor.batch_size
    chunk = item['slices'][start:start + loop.predictor.batch_size]
    z, packed = chunk[0]
    meta = packed['data_samples'].metainfo
    sx, sy = meta['scale_factor']
    assert abs(sx - 1.0) > 0.05  # the synthetic spacing differs from 0.8 mm/px
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[p['inputs'] for _, p in chunk],
                 data_samples=[copy.deepcopy(p['data_samples']) for _, p in chunk]), False)
        raw = model.predict(data['inputs'], data['data_samples'], rescale=False)[0]
    expected = raw.pred_instances.bboxes.numpy() / np.array([sx, sy, sx, sy])
    np.testing.assert_allclose(pred.slice_dets[z][:, :4], expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pred.slice_dets[z][:, 4], raw.pred_instances.scores.numpy(),
                               rtol=1e-6)
    assert len(pred.slice_dets) == len(item['slices'])
    w, h = item['image_size']
    for trk in pred.tracklets:  # stacked boxes never leave the image
        assert trk.boxes[:, [0, 2]].min() >= 0 and trk.boxes[:, [0, 2]].max() <= w
        assert trk.boxes[:, [1, 3]].min() >= 0 and trk.boxes[:, [1, 3]].max() <= h
