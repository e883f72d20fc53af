"""RandomTransposeLPC keeps the views consistent views of one x/y-swapped volume."""
import numpy as np
import pytest

from mmlesion.datasets.transforms.lpc import RandomTransposeLPC

VIEWS_AXES = (('y', 'x'), ('z', 'x'), ('z', 'y'))


def volume_views(vol):
    """Axial, coronal, sagittal planes through the centre of a (z, y, x) cube."""
    c = vol.shape[0] // 2
    return np.stack([vol[c], vol[:, c, :], vol[:, :, c]])


def test_views_equal_the_views_of_the_transposed_volume():
    vol = np.random.default_rng(0).random((9, 9, 9)).astype(np.float32)
    out = RandomTransposeLPC(prob=1.0)(dict(img=volume_views(vol), patch_axes=VIEWS_AXES))
    np.testing.assert_array_equal(out['img'], volume_views(vol.transpose(0, 2, 1)))
    assert out['transposed']
    kept = RandomTransposeLPC(prob=0.0)(dict(img=volume_views(vol), patch_axes=VIEWS_AXES))
    np.testing.assert_array_equal(kept['img'], volume_views(vol))
    assert not kept['transposed']


def test_cube_and_axial_only():
    vol = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = RandomTransposeLPC(1.0)(dict(img=vol, patch_axes=('z', 'y', 'x')))
    np.testing.assert_array_equal(out['img'], vol.transpose(0, 2, 1))
    axial = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = RandomTransposeLPC(1.0)(dict(img=axial, patch_axes=(('y', 'x'), )))
    np.testing.assert_array_equal(out['img'][0], axial[0].T)


def test_errors():
    with pytest.raises(ValueError, match='prob'):
        RandomTransposeLPC(prob=2.0)
    coronal_only = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(ValueError, match='no partner'):
        RandomTransposeLPC(1.0)(dict(img=coronal_only, patch_axes=(('z', 'x'), )))
