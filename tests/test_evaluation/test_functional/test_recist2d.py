import numpy as np
import pytest

from mmlesion.evaluation.functional.froc import RECIST_FP_POINTS
from mmlesion.evaluation.functional.recist2d import evaluate_recist_2d


def _case():
    gt = {
        'I1': [[0, 0, 9, 9]],
        'I2': [[0, 0, 19, 19], [100, 100, 119, 119]],
        'I3': np.zeros((0, 4)),
    }
    dets = {
        'I1': [[0, 0, 9, 9, 0.9],  # TP
               [0, 1, 9, 10, 0.85],  # second hit on the same GT (IoU 90/110)
               [300, 300, 310, 310, 0.3]],  # FP
        'I2': np.array([[0, 0, 19, 19, 0.8],  # TP
                        [100, 100, 109, 109, 0.7]]),  # IoU 0.25 (miss), IoBB 1 (hit)
        'I3': [[5, 5, 15, 15, 0.6]],  # FP
        'I9': [[0, 0, 1, 1, 0.99]],  # image outside the set: ignored
    }
    return gt, dets


def test_recist_iou_hand_case():
    gt, dets = _case()
    res = evaluate_recist_2d(gt, dets)
    # ranks .9 TP, .85 duplicate (not counted), .8 TP, .7 FP, .6 FP, .3 FP over 3 images
    np.testing.assert_allclose(res.curve_fps, [0, 0, 0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(res.curve_sens, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(res.fp_points, RECIST_FP_POINTS)
    np.testing.assert_allclose(res.sensitivity, 2 / 3)
    # AP (duplicate = AP false positive): 1/3 * 1 + 1/3 * 2/3
    assert res.ap == pytest.approx(5 / 9)
    assert res.n_ignored_dets == 1 and res.ignored_keys == ['I9']
    assert res.n_images == 3 and res.n_gt == 3


def test_recist_iobb_variant():
    gt, dets = _case()
    res = evaluate_recist_2d(gt, dets, criterion='iobb')
    np.testing.assert_allclose(res.curve_sens, [1 / 3, 1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(res.sensitivity, 1.0)


def test_recist_duplicate_counting_options():
    gt, dets = _case()
    ignore = evaluate_recist_2d(gt, dets, fp_points=[0.25])
    strict = evaluate_recist_2d(gt, dets, fp_points=[0.25], froc_duplicates='fp')
    assert ignore.sensitivity[0] == pytest.approx(2 / 3)  # 3DCE / MULAN
    assert strict.sensitivity[0] == pytest.approx(1 / 3)  # the duplicate costs 1/3 FP/image


def test_recist_no_detections_and_errors():
    res = evaluate_recist_2d({'a': [[0, 0, 5, 5]]}, {})
    assert res.n_dets == 0 and res.ap == 0.0
    np.testing.assert_allclose(res.sensitivity, 0.0)
    with pytest.raises(ValueError, match=r"detections of 'a'"):
        evaluate_recist_2d({'a': [[0, 0, 5, 5]]}, {'a': [[0, 0, 5, 5]]})
    with pytest.raises(ValueError, match='criterion'):
        evaluate_recist_2d({'a': [[0, 0, 5, 5]]}, {}, criterion='giou')
    with pytest.raises(ValueError, match='empty'):
        evaluate_recist_2d({}, {})
