"""P3DMetric on a hand-worked case: 4 volumes (one empty, one with only a hard negative), 4
lesions, 5 tracklets.

Ranking by tracklet score (max slice score): 0.9 hits g1 (A z=10), 0.8 FP (A z=12, on the noisy
mark), 0.7 hits g3 (B z=5), 0.6 FP (C, on the hard negative), 0.5 hits g2 (A z=12); g4 missed.
FPs per volume after each rank (denominator 4 volumes, D included): 0, .25, .25, .5, .5;
sensitivity .25, .25, .5, .5, .75.
* extrapolate: 0.125 -> .25, 0.25 -> .25, 0.5 -> .5, >= 1 -> .75 + 1 * (t - .5) clipped to 1.
* clamp: >= 1 -> .75.
* AP: precision 1, 1/2, 2/3, 2/4, 3/5 -> .25 * (1 + 2/3 + 3/5) = 17/30.
"""
import json

import pytest
from annotation_case import TRACKLETS, A, B, C, D
from mmengine.evaluator import Evaluator

from mmdet.registry import METRICS
from mmlesion.evaluation import P3DMetric
from mmlesion.evaluation.detection_io import load_lh_detections
from mmlesion.structures import Tracklet

EXTRAPOLATE = [0.25, 0.25, 0.5, 1, 1, 1, 1, 1]
CLAMP = [0.25, 0.25, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75]
FPS = ('0.125', '0.25', '0.5', '1', '2', '4', '8', '16')


def _run(metric, results, size=None):
    ev = Evaluator([metric])
    ev.process(results)
    return ev.evaluate(size or len(results))


def _results(**extra):
    return [dict(volume_id=k, tracklets=TRACKLETS.get(k, []), **extra) for k in (A, B, C, D)]


@pytest.mark.parametrize('interp,expected', [('extrapolate', EXTRAPOLATE), ('clamp', CLAMP)])
def test_hand_worked_p3d(coco_file, interp, expected):
    metric = METRICS.build(dict(type='P3DMetric', ann_file=coco_file, interp=interp))
    assert isinstance(metric, P3DMetric)
    out = _run(metric, _results())
    assert out['p3d/AP'] == pytest.approx(17 / 30)
    assert [out[f'p3d/sens@{t}'] for t in FPS] == pytest.approx(expected)
    r = metric.last_result
    assert (r.n_gt, r.n_images, r.n_dets) == (4, 4, 5)


def test_noisy_marks_count_when_kept(coco_file):
    # the 0.8 tracklet now hits the noisy mark: ranks TP TP TP FP TP over 5 lesions
    out = _run(P3DMetric(ann_file=coco_file, drop_noisy=False), _results())
    assert out['p3d/AP'] == pytest.approx(0.2 * (1 + 1 + 1 + 0.8))


def test_lh_pickle_ground_truth_and_tracklet_objects_agree(coco_file, lh2d_file):
    as_objects = []
    for r in _results():
        trks = [Tracklet([z for z, _ in t], [b for _, b in t]) for t in r['tracklets']]
        as_objects.append(dict(volume_id=r['volume_id'], tracklets=trks))
    a = _run(P3DMetric(ann_file=coco_file), _results())
    b = _run(P3DMetric(ann_file=lh2d_file), as_objects)
    assert a == pytest.approx(b)


def test_ground_truth_carried_by_the_scan(coco_file):
    gt = {A: [[10, 10, 10, 29, 29], [12, 50, 50, 59, 59]],
          B: [[5, 0, 0, 9, 9], [7, 80, 80, 99, 99]], C: [], D: []}
    results = [dict(r, gt_boxes_2d=gt[r['volume_id']]) for r in _results()]
    out = _run(P3DMetric(), results)
    assert out['p3d/AP'] == pytest.approx(17 / 30)
    assert out['p3d/sens@1'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='no ann_file'):
        _run(P3DMetric(), _results())


def test_unscanned_volumes_count_and_outside_volumes_are_ignored(coco_file):
    # D not scanned (still in the denominator), an unknown volume is ignored
    results = _results()[:3] + [dict(volume_id='000009_01_01_000-010',
                                     tracklets=[[(1, [0, 0, 9, 9, 0.99])]])]
    metric = P3DMetric(ann_file=coco_file)
    out = _run(metric, results)
    assert out['p3d/AP'] == pytest.approx(17 / 30)
    assert metric.last_result.n_images == 4 and metric.last_result.n_ignored_dets == 1


def test_outputs_written(coco_file, tmp_path):
    metric = P3DMetric(ann_file=coco_file, outfile_prefix=str(tmp_path / 'run'))
    _run(metric, _results())
    dets = load_lh_detections(tmp_path / 'run_p3d.pkl')  # back to the mmlesion frame
    assert sorted(dets) == [A, B, C, D] and dets[D] == []
    assert dets[A][0][1] == (10, pytest.approx([10, 10, 29, 29, 0.9]))
    with open(tmp_path / 'run_p3d.json') as f:
        data = json.load(f)
    assert data['ap'] == pytest.approx(17 / 30)
    assert data['fps'] == [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
    assert data['sensitivity'] == pytest.approx(EXTRAPOLATE)
    assert data['fp_denominator'] == 4 and data['n_gt'] == 4


def test_bad_configuration_and_inputs(coco_file):
    with pytest.raises(ValueError, match='interp'):
        P3DMetric(interp='nearest')
    with pytest.raises(ValueError, match='fp_points'):
        P3DMetric(fp_points=[0, 1])
    with pytest.raises(KeyError, match='VolumeScanTestLoop'):
        P3DMetric(ann_file=coco_file).process(None, [dict(img_id=1, pred_instances={})])
    with pytest.raises(ValueError, match='tracklet 0, box 0'):
        P3DMetric().process(None, [dict(volume_id=A, tracklets=[[(10, [1, 2, 3])]])])
