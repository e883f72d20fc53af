"""Recist2DMetric on a hand-worked case over the 5 key slices of ``annotation_case`` (4 lesions).

Detections: img 1 (A z=10): 0.9 = g1 (TP), 0.8 [12, 12, 31, 31] (IoU .68 with g1: duplicate);
img 3 (B z=5): 0.7 = g3 (TP), 0.6 FP; img 5 (C z=3, hard negative only): 0.5 FP; img 4 (B z=7):
0.4 [80, 80, 85, 85] inside g4 (IoU 36/400 = .09: FP; IoBB 36/36 = 1: TP); img 2: none.

IoU: FPs/image 0, 0, 0, .2, .4, .6 (the duplicate is not a FP); sensitivity .25, .25, .5, .5, .5,
.5 -> .5 at every rate.  AP (the duplicate is one FP): .25 * 1 + .25 * 2/3 = 5/12.
IoBB: FPs/image 0, 0, 0, .2, .4, .4; sensitivity ... .75 -> extrapolated .75 + 1.25 * (.5 - .4)
= .875 at 0.5, 1 beyond; AP .25 * (1 + 2/3 + 1/2) = 13/24.
"""
import numpy as np
import pytest
import torch
from annotation_case import make_coco
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmlesion.evaluation import Recist2DMetric
from mmlesion.evaluation.detection_io import load_lh_detections

DETS = {1: [[10, 10, 29, 29, 0.9], [12, 12, 31, 31, 0.8]], 2: [],
        3: [[0, 0, 9, 9, 0.7], [40, 40, 50, 50, 0.6]], 4: [[80, 80, 85, 85, 0.4]],
        5: [[0, 0, 5, 5, 0.5]]}
RATES = ('0.5', '1', '2', '4', '8', '16')


def _samples(with_gt=False):
    coco = make_coco()
    images = {im['id']: im for im in coco['images']}
    gts = {i: [] for i in images}
    for ann in coco['annotations']:
        if not ann['hard_negative'] and not ann['noisy']:
            x, y, w, h = ann['bbox']
            gts[ann['image_id']].append([x, y, x + w, y + h])
    out = []
    for img_id, dets in DETS.items():
        im = images[img_id]
        sample = DetDataSample(metainfo=dict(img_id=img_id, volume_id=im['volume_id'],
                                             slice_index=im['slice_index'],
                                             scale_factor=(1.3, 1.3)))
        d = torch.tensor(dets, dtype=torch.float32).reshape(-1, 5)
        sample.pred_instances = InstanceData(bboxes=d[:, :4], scores=d[:, 4],
                                             labels=torch.zeros(len(d), dtype=torch.long))
        if with_gt:
            g = torch.tensor(gts[img_id], dtype=torch.float32).reshape(-1, 4)
            sample.gt_instances = InstanceData(bboxes=HorizontalBoxes(g),
                                               labels=torch.zeros(len(g), dtype=torch.long))
        out.append(sample)
    return out


def _run(metric, samples):
    ev = Evaluator([metric])
    ev.process(samples)
    return ev.evaluate(len(samples))


def _check(out, iobb_at_half=0.875):
    assert out['recist2d/AP'] == pytest.approx(5 / 12)
    assert [out[f'recist2d/sens@{t}'] for t in RATES] == pytest.approx([0.5] * 6)
    assert out['recist2d/iobb_AP'] == pytest.approx(13 / 24)
    assert [out[f'recist2d/iobb_sens@{t}'] for t in RATES] == \
        pytest.approx([iobb_at_half, 1, 1, 1, 1, 1])


def test_ground_truth_from_the_json(coco_file):
    metric = METRICS.build(dict(type='Recist2DMetric', ann_file=coco_file))
    _check(_run(metric, _samples()))
    assert metric.last_results['iou'].n_images == 5


def test_ground_truth_from_the_data_samples():
    _check(_run(Recist2DMetric(), _samples(with_gt=True)))


def test_clamp_and_single_criterion(coco_file):
    out = _run(Recist2DMetric(ann_file=coco_file, criteria='iobb', interp='clamp'), _samples())
    # the only criterion gets the plain keys
    assert out['recist2d/AP'] == pytest.approx(13 / 24)
    assert [out[f'recist2d/sens@{t}'] for t in RATES] == pytest.approx([0.75] * 6)


def test_images_missing_from_the_run_still_count(coco_file):
    metric = Recist2DMetric(ann_file=coco_file, criteria=['iou'])
    out = _run(metric, [s for s in _samples() if s.img_id != 2])
    assert out['recist2d/AP'] == pytest.approx(5 / 12)
    assert metric.last_results['iou'].n_images == 5


def test_det_out_is_the_lh_format(coco_file, tmp_path):
    _run(Recist2DMetric(ann_file=coco_file, det_out=str(tmp_path / 'd.pkl')), _samples())
    dets = load_lh_detections(tmp_path / 'd.pkl')
    assert sorted(dets) == ['000001_01_01_005-025', '000002_01_01_000-010',
                            '000003_01_01_000-010']
    a = dets['000001_01_01_005-025']
    assert [len(t) for t in a] == [1, 1] and a[0][0][0] == 10
    np.testing.assert_allclose(a[0][0][1], [10, 10, 29, 29, 0.9], atol=1e-6)


def test_errors(coco_file, lh2d_file):
    with pytest.raises(ValueError, match='criteria'):
        Recist2DMetric(criteria=['dice'])
    with pytest.raises(ValueError, match='no ann_file'):
        _run(Recist2DMetric(), _samples(with_gt=False))
    with pytest.raises(ValueError, match='needs the mmlesion JSON'):
        _run(Recist2DMetric(ann_file=lh2d_file), _samples())
    samples = _samples()
    samples[0].set_metainfo(dict(img_id=99))
    with pytest.raises(ValueError, match='not in'):
        _run(Recist2DMetric(ann_file=coco_file), samples)
