"""The one tracklet type and the layouts it is read from (hand-made cases)."""
import numpy as np
import pytest

from mmlesion.structures import (
    Tracklet,
    as_tracklet,
    as_tracklets,
    pack_tracklets,
    tracklet_array,
    tracklet_parts,
)

LH = [(10, [1.0, 2.0, 11.0, 12.0, 0.3]), (11, [2.0, 2.0, 12.0, 14.0, 0.9]),
      (12, [3.0, 1.0, 13.0, 13.0, 0.5])]
ARR = np.array([[10, 1, 2, 11, 12, 0.3], [11, 2, 2, 12, 14, 0.9], [12, 3, 1, 13, 13, 0.5]],
               dtype=np.float64)


def test_three_layouts_read_the_same():
    trk = Tracklet(ARR[:, 0].astype(int), ARR[:, 1:])
    for layout in (LH, ARR, trk):
        z, boxes = tracklet_parts(layout)
        np.testing.assert_array_equal(z, [10, 11, 12])
        np.testing.assert_array_equal(boxes, ARR[:, 1:])
        np.testing.assert_array_equal(tracklet_array(layout), ARR)
        t = as_tracklet(layout)
        assert t.z.dtype == np.int64 and t.boxes.dtype == np.float64
        assert t.to_lh() == LH
    assert as_tracklet(trk) is trk


def test_score_best_slice_and_enclosing_box_by_hand():
    t = as_tracklet(LH)
    assert t.score == 0.9 and t.best_index == 1 and len(t) == 3
    # x/y: union of the slice boxes; z: slices 10..12 span [9.5, 12.5]
    np.testing.assert_array_equal(t.box3d, [1.0, 1.0, 9.5, 13.0, 14.0, 12.5])
    np.testing.assert_array_equal(t.to_array(), ARR)
    assert not t.filled.any()


def test_float_slice_indices_must_be_integral():
    assert as_tracklet([(3.0, [0, 0, 1, 1, 0.5])]).z.tolist() == [3]
    with pytest.raises(ValueError, match='not an integer'):
        Tracklet(np.array([3.5]), np.array([[0, 0, 1, 1, 0.5]]))


def test_malformed_input_is_named():
    with pytest.raises(ValueError, match=r'volume v, tracklet 1, box 0: expected \(z, \[x1'):
        as_tracklets([LH, [(1, [0, 0, 1])]], 'volume v')
    with pytest.raises(ValueError, match=r'volume v, tracklet 0: empty tracklet'):
        as_tracklets([[]], 'volume v')
    with pytest.raises(ValueError, match=r'\(n, 6\) array'):
        as_tracklet(np.zeros((2, 5)))
    with pytest.raises(ValueError, match='non-finite'):
        as_tracklet([(1, [0, 0, np.nan, 1, 0.5])])
    with pytest.raises(ValueError, match='n >= 1'):
        Tracklet(np.zeros(2, int), np.zeros((3, 5)))


def test_pack_mixes_layouts_in_volume_order():
    dets = {'b.annot': [LH], 'a': [ARR, as_tracklet(LH[:1])]}
    packed = pack_tracklets(dets, ['a', 'b', 'c'])
    assert packed.keys == ['a', 'b', 'c']
    assert packed.trk_volume.tolist() == [0, 0, 1]
    assert packed.trk_len.tolist() == [3, 1, 3]
    assert packed.trk_start.tolist() == [0, 3, 4]
    np.testing.assert_array_equal(packed.scores, [0.9, 0.3, 0.9])
    assert packed.z.tolist() == [10, 11, 12, 10, 10, 11, 12]
