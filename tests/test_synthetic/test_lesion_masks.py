"""Lesions described from their masks (key slice, RECIST, boxes), on a hand-made mask."""
import math

import numpy as np
import pytest

from mmlesion.synthetic.lesion_masks import (
    describe_mask_lesion,
    key_slice_of_mask,
    mask_box3d,
    mask_lesions,
    mask_slice_boxes,
)
from mmlesion.synthetic.nrrd_volume import nrrd_z_to_slice, slice_to_nrrd_z


def test_mask_geometry_by_hand():
    m = np.zeros((4, 6, 7), bool)
    m[1, 2:4, 1:3] = True  # 4 px
    m[2, 1:4, 1:4] = True  # 9 px
    m[3, 2:5, 2:5] = True  # 9 px: tie with z = 2, the mean z is (4 + 18 + 27) / 22 = 2.23
    assert key_slice_of_mask(m) == 2
    assert mask_slice_boxes(m) == {1: [1.0, 2.0, 2.0, 3.0], 2: [1.0, 1.0, 3.0, 3.0],
                                   3: [2.0, 2.0, 4.0, 4.0]}
    assert mask_box3d(m) == [1.0, 1.0, 4.0, 4.0, 1.0, 3.0]
    label = m.astype(np.uint8)
    label[0, 5, 6] = 1  # not touching: a second lesion
    label[3, 0, 0] = 2
    # value 1 first (ordered by first voxel: the lone voxel on z = 0), then value 2
    assert [int(c.sum()) for c in mask_lesions(label)] == [1, 22, 1]
    d = describe_mask_lesion(m, (0.8, 0.8))
    # 3 x 3 square of pixel centres: the long axis is its diagonal, 2 sqrt(2) px.
    assert d['key_slice'] == nrrd_z_to_slice(2) == 3 and slice_to_nrrd_z(3) == 2
    assert d['diameters_px'][0] == pytest.approx(2 * math.sqrt(2), abs=1e-4)
    assert d['box2d'] == [0.0, 0.0, 6.0, 5.0]  # RECIST extent 1..3 padded by 5, clipped to W-1, H-1
    assert [s['slice'] for s in d['slices']] == [2, 3, 4] and d['num_voxels'] == 22
    assert d['mask_box3d'] == [1.0, 1.0, 4.0, 4.0, 2, 4]
