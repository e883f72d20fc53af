import numpy as np
import pytest

from mmlesion.structures.boxes import (
    box_area_2d,
    box_iobb_2d,
    box_iobb_2d_pairs,
    box_iou_2d,
    box_iou_2d_pairs,
    box_iou_3d,
    box_iou_3d_pairs,
    match_pairs_by_key,
)


def test_iou_2d_plus_one_and_continuous_by_hand():
    a = np.array([[0, 0, 9, 9]])
    b = np.array([[5, 5, 14, 14]])
    # inclusive pixels: 10x10 boxes, 5x5 overlap -> 25 / 175
    assert box_iou_2d(a, b)[0, 0] == pytest.approx(25 / 175)
    # continuous corners: 9x9 boxes, 4x4 overlap -> 16 / 146
    assert box_iou_2d(a, b, plus_one=False)[0, 0] == pytest.approx(16 / 146)
    assert box_area_2d(a)[0] == 100 and box_area_2d(a, plus_one=False)[0] == 81


def test_iou_2d_matrix_shape_pairs_and_extra_columns():
    a = np.array([[0, 0, 9, 9, 0.9], [100, 100, 109, 109, 0.1]])
    b = np.array([[0, 0, 9, 9], [5, 5, 14, 14], [300, 300, 310, 310]])
    m = box_iou_2d(a, b)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m[0], [1.0, 25 / 175, 0.0])
    np.testing.assert_allclose(m[1], 0.0)
    np.testing.assert_allclose(box_iou_2d_pairs(a, b[:2]), [1.0, 0.0])


def test_iou_translation_invariant_frames():
    a = np.array([[10.5, 20.0, 22.0, 31.0]])
    b = np.array([[12.0, 18.0, 25.0, 30.0]])
    for plus_one in (True, False):
        assert box_iou_2d(a, b, plus_one)[0, 0] == pytest.approx(
            box_iou_2d(a + 1, b + 1, plus_one)[0, 0])


def test_iobb_is_intersection_over_detection():
    det = np.array([[0, 0, 9, 9]])
    gt = np.array([[0, 0, 19, 19]])
    assert box_iobb_2d(det, gt)[0, 0] == pytest.approx(1.0)
    assert box_iou_2d(det, gt)[0, 0] == pytest.approx(100 / 400)
    assert box_iobb_2d_pairs(gt, det)[0] == pytest.approx(100 / 400)


def test_degenerate_boxes_give_zero_not_nan():
    z = np.array([[5, 5, 5, 5]])
    assert box_iou_2d(z, z, plus_one=False)[0, 0] == 0.0
    assert box_iou_2d(z, z, plus_one=True)[0, 0] == 1.0  # one inclusive pixel
    assert np.isfinite(box_iou_3d(np.zeros((1, 6)), np.zeros((1, 6)))).all()


def test_iou_3d_by_hand():
    a = np.array([[0, 0, 0, 2, 2, 2]])
    b = np.array([[1, 1, 1, 3, 3, 3]])
    assert box_iou_3d(a, b)[0, 0] == pytest.approx(1 / 15)
    assert box_iou_3d(a, b, plus_one=True)[0, 0] == pytest.approx(8 / 46)
    np.testing.assert_allclose(box_iou_3d_pairs(np.vstack([a, a]), np.vstack([b, a])),
                               [1 / 15, 1.0])


def test_empty_inputs_and_bad_shapes():
    assert box_iou_2d(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_iou_2d([], [[0, 0, 1, 1]]).shape == (0, 1)
    with pytest.raises(ValueError, match=r'\(N, >=4\)'):
        box_iou_2d(np.zeros((2, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match='equal lengths'):
        box_iou_2d_pairs(np.zeros((2, 4)), np.zeros((1, 4)))


def test_match_pairs_by_key():
    di, gi = match_pairs_by_key([3, 1, 3, 7], [1, 3, 3, 5])
    assert list(zip(di.tolist(), gi.tolist())) == [(0, 1), (0, 2), (1, 0), (2, 1), (2, 2)]
    di, gi = match_pairs_by_key([], [1, 2])
    assert di.size == 0 and gi.size == 0
