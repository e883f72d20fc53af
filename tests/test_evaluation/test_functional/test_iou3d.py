import numpy as np
import pytest

from mmlesion.evaluation.functional.iou3d import clip_boxes3d_z, evaluate_iou_3d, tracklet_boxes3d
from mmlesion.structures import Tracklet


def test_iou3d_hand_case():
    gt = {'V1.annot': [[0, 0, 0, 10, 10, 10], [50, 50, 0, 60, 60, 10]], 'V2': []}
    dets = {'V1': np.array([[0, 0, 0, 10, 10, 5, 0.9],  # IoU 0.5 with g1
                            [50, 50, 0, 60, 60, 3, 0.8],  # IoU 0.3 < 0.33: FP
                            [50, 50, 2, 60, 60, 10, 0.7]])}  # IoU 0.8 with g2
    res = evaluate_iou_3d(gt, dets)
    np.testing.assert_allclose(res.curve_fps, [0, 0.5, 0.5])
    np.testing.assert_allclose(res.curve_sens, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(res.sensitivity, [0.5, 0.5, 0.5, 1, 1, 1, 1, 1])
    assert res.ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    # threshold 0.25: the 0.3 box now hits g2 first and the 0.8 box is an uncounted duplicate
    loose = evaluate_iou_3d(gt, dets, iou_thr=0.25)
    np.testing.assert_allclose(loose.curve_sens, [0.5, 1.0, 1.0])
    np.testing.assert_allclose(loose.curve_fps, [0, 0, 0])


def test_tracklet_boxes3d_conventions():
    dets = {'V': [[(3, [1, 2, 5, 6, 0.2]), (4, [0, 3, 6, 7, 0.7])],
                  Tracklet(z=[10], boxes=[[5, 5, 8, 8, 0.4]])]}
    cont = tracklet_boxes3d(dets)['V']
    np.testing.assert_allclose(cont, [[0, 2, 2.5, 6, 7, 4.5, 0.7], [5, 5, 9.5, 8, 8, 10.5, 0.4]])
    incl = tracklet_boxes3d(dets, z_convention='inclusive')['V']
    np.testing.assert_allclose(incl[:, [2, 5]], [[3, 4], [10, 10]])
    # a one-slice tracklet against the same box from 3D-Box style extents: IoU 1
    res = evaluate_iou_3d({'V': [[5, 5, 9.5, 8, 8, 10.5]]}, {'V': cont})
    assert res.gt_hit.all()


def test_clip_boxes3d_z():
    b = clip_boxes3d_z(np.array([[0, 0, -0.5, 1, 1, 13.5]]), 0, 12)
    np.testing.assert_allclose(b[0, [2, 5]], [-0.5, 12.5])
    b = clip_boxes3d_z(np.array([[0, 0, -2, 1, 1, 15]]), 0, 12, z_convention='inclusive')
    np.testing.assert_allclose(b[0, [2, 5]], [0, 12])


def test_iou3d_bad_shapes():
    with pytest.raises(ValueError, match=r"detections of 'V'"):
        evaluate_iou_3d({'V': [[0, 0, 0, 1, 1, 1]]}, {'V': [[0, 0, 0, 1, 1, 1]]})
