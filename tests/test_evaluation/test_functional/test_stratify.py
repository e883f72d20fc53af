import numpy as np
import pytest

from mmlesion.evaluation.functional.p3d import evaluate_p3d
from mmlesion.evaluation.functional.stratify import (
    align_gt_values,
    box_long_side,
    sensitivity_by_stratum,
    size_strata,
)


def _result():
    gt = {'V1': [(3, [0, 0, 9, 9]), (3, [50, 50, 59, 59])], 'V2': [(7, [0, 0, 19, 19])]}
    dets = {'V1': [[(3, [0, 0, 9, 9, 0.9])], [(3, [1, 0, 10, 9, 0.7])],
                   [(3, [200, 200, 210, 210, 0.5])]],
            'V2': [[(6, [0, 0, 19, 19, 0.8])], [(7, [0, 0, 19, 19, 0.6])]]}
    return evaluate_p3d(gt, dets)


def test_strata_share_false_positives_and_sum_to_total():
    res = _result()
    labels = align_gt_values(res, {'V1': ['small', 'large'], 'V2.annot': ['small']})
    assert labels.tolist() == ['small', 'large', 'small']
    strata = sensitivity_by_stratum(res, labels)
    assert list(strata) == ['large', 'small']
    small, large = strata['small'], strata['large']
    assert (small.n_gt, small.n_hit, large.n_gt, large.n_hit) == (2, 2, 1, 0)
    np.testing.assert_allclose(small.curve_sens, [0.5, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(large.curve_sens, 0.0)
    # GT-weighted strata add up to the overall curve at every rank and every FP point
    np.testing.assert_allclose(2 * small.curve_sens + large.curve_sens, 3 * res.curve_sens)
    np.testing.assert_allclose(2 * small.sensitivity + large.sensitivity, 3 * res.sensitivity)
    np.testing.assert_allclose(small.sensitivity, [0.5, 0.5, 0.5, 1, 1, 1, 1, 1])


def test_lesion_type_strata_and_label_count_check():
    res = _result()
    by_type = sensitivity_by_stratum(res, [4, 5, 4], fp_points=[1.0])
    assert set(by_type) == {4, 5}
    assert by_type[4].sensitivity[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='one stratum label per ground truth'):
        sensitivity_by_stratum(res, [1, 2])
    with pytest.raises(ValueError, match="no stratum values for 'V2'"):
        align_gt_values(res, {'V1': [1, 2]})


def test_size_strata_and_box_long_side():
    labels = size_strata([5, 10, 29.9, 30, np.nan])
    assert labels.tolist() == ['<10mm', '10-30mm', '10-30mm', '>=30mm', 'unknown']
    assert size_strata([3, 40], edges=[16], unit='px').tolist() == ['<16px', '>=16px']
    boxes = np.array([[0, 0, 20, 10]])
    assert box_long_side(boxes).tolist() == [20]
    assert box_long_side(boxes, spacing_xy_mm=0.5).tolist() == [10]
    assert box_long_side(boxes, spacing_xy_mm=0.5, pad_px=5).tolist() == [5]
    assert box_long_side(boxes, spacing_xy_mm=(0.5, 2.0)).tolist() == [20]
    with pytest.raises(ValueError, match='strictly increasing'):
        size_strata([1], edges=[30, 10])
