"""Frames and extents (mmlesion.structures.conventions) on hand-computed values."""
import numpy as np
import pytest

from mmlesion.structures import (
    EVAL_PLUS_ONE,
    STACK_PLUS_ONE,
    box_iou_2d,
    check_frame,
    convert_frame,
    slice_extent,
    volume_info_from_key,
)


def test_lh_to_mmlesion_and_back():
    # relative z 2 of a sub-volume starting at slice 30 is absolute 32; 1-based x 10 is 0-based 9
    z, xy = convert_frame(np.array([2, 0]), np.array([[10.0, 20.0], [1.0, 1.0]]),
                          np.array([30, 30]), 'lh', 'mmlesion')
    assert z.tolist() == [32, 30] and z.dtype.kind == 'i'
    np.testing.assert_array_equal(xy, [[9.0, 19.0], [0.0, 0.0]])
    z2, xy2 = convert_frame(z, xy, 30, 'mmlesion', 'lh')
    assert z2.tolist() == [2, 0]
    np.testing.assert_array_equal(xy2, [[10.0, 20.0], [1.0, 1.0]])
    same_z, same_xy = convert_frame(z, xy, 30, 'lh', 'lh')
    assert same_z.tolist() == z.tolist() and same_xy is not xy  # a copy either way


def test_unknown_frame_names_both_frames():
    with pytest.raises(ValueError, match="one of \\('mmlesion', 'lh'\\).*relative z"):
        check_frame('dicom')


def test_continuous_extent_and_iou_conventions():
    assert slice_extent(3, 5) == (2.5, 5.5)
    # evaluation counts inclusive pixels, stacking continuous corners: a 10x10 vs 10x10 box
    # shifted by 5 px: +1 gives 10x10 boxes sharing 5x5 = 25/175; continuous gives 9x9 boxes
    # sharing 4x4 = 16/(81 + 81 - 16)
    a, b = np.array([[0, 0, 9, 9]]), np.array([[5, 5, 14, 14]])
    assert EVAL_PLUS_ONE is True and STACK_PLUS_ONE is False
    assert box_iou_2d(a, b, plus_one=EVAL_PLUS_ONE)[0, 0] == pytest.approx(25 / 175)
    assert box_iou_2d(a, b, plus_one=STACK_PLUS_ONE)[0, 0] == pytest.approx(16 / 146)


def test_volume_info_from_key():
    v = volume_info_from_key('000089_01_01_031-043.annot')
    assert (v.key, v.series, v.slice_range) == ('000089_01_01_031-043', '000089_01_01', (31, 43))
    assert not v.has_spacing
    v.spacing = [0.7, 0.7, 2.5]
    assert v.has_spacing
    with pytest.raises(ValueError):
        volume_info_from_key('not-a-key')
