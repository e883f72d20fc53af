"""IoU3DMetric on a hand-worked case, with the same ground truth given as 3D-Box.pkl (relative z,
1-based, continuous z), as the LENS release (absolute, inclusive integer z) and as JSON.

Volume A (start slice 5): g1 = [10, 10, 9.5, 30, 30, 12.5], g2 = [50, 50, 9.5, 60, 60, 10.5]
(0-based, absolute, continuous); volume B empty.  Tracklets: 0.9 on slices 10-12 with box
[10, 10, 30, 30] (IoU 1 with g1); 0.8 on slice 10 with [10, 10, 29, 30] (IoU 380 / 1200 = 0.317
with g1: below 0.33); 0.7 on slice 10 with [50, 50, 60, 60] (IoU 1 with g2).
FPs/volume 0, .5, .5; sensitivity .5, .5, 1 -> AP .5 + .5 * 2/3 = 5/6.
"""
import numpy as np
import pytest
from mmengine.evaluator import Evaluator

from mmdet.registry import METRICS
from mmlesion.datasets.converters.annotation_release import import_release
from mmlesion.utils.fileio import atomic_dump_json, atomic_dump_pickle

A, B = '000001_01_01_005-025', '000002_01_01_000-010'
TRACKLETS = {
    A: [[(z, [10, 10, 30, 30, 0.9]) for z in (10, 11, 12)],
        [(10, [10, 10, 29, 30, 0.8])],
        [(10, [50, 50, 60, 60, 0.7])]],
    B: [],
}


def _evaluate(ann_file, **kw):
    metric = METRICS.build(dict(type='IoU3DMetric', ann_file=ann_file, **kw))
    ev = Evaluator([metric])
    ev.process([dict(volume_id=k, tracklets=v) for k, v in TRACKLETS.items()])
    return ev.evaluate(2)


@pytest.fixture
def files(tmp_path):
    box3d = tmp_path / '3D-Box.pkl'
    atomic_dump_pickle({A: [[11., 11., 31., 31., 4.5, 7.5], [51., 51., 61., 61., 4.5, 5.5]],
                        B: []}, box3d)
    lens = tmp_path / 'DeepLesion_manual_1K_test_release.pkl'
    atomic_dump_pickle({'val': {}, 'test': {A: np.array([[11., 11., 10., 31., 31., 12.],
                                              [51., 51., 10., 61., 61., 10.]]),
                                 B: np.zeros((0, 6))}}, lens)
    coco, _ = import_release(str(lens))
    js = tmp_path / 'lens.json'
    atomic_dump_json(coco, js)
    return dict(box3d=str(box3d), lens=str(lens), json=str(js))


@pytest.mark.parametrize('kind', ['box3d', 'lens', 'json'])
def test_hand_worked_iou3d(files, kind):
    out = _evaluate(files[kind])
    assert out['iou3d/AP'] == pytest.approx(5 / 6)
    assert [out[f'iou3d/sens@{t:g}'] for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16)] == \
        pytest.approx([0.5, 0.5, 0.5, 1, 1, 1, 1, 1])


def test_threshold_is_passed_through(files):
    # at 0.3 the 0.8 tracklet hits the already-hit g1: not a FROC FP, so 1.0 from the start
    out = _evaluate(files['box3d'], iou_thr=0.3)
    assert out['iou3d/sens@0.125'] == pytest.approx(1.0)
    assert out['iou3d/AP'] == pytest.approx(5 / 6)  # per_gt AP: the duplicate is one FP


def test_2d_only_ground_truth_is_refused(tmp_path):
    path = tmp_path / 'Revised-X.pkl'
    atomic_dump_pickle({A + '.annot': {5: [[11, 11, 31, 31, 5, 5]]}}, path)
    with pytest.raises(ValueError, match='no 3D boxes'):
        _evaluate(str(path))
