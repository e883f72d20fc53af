"""Overlay images: boxes land on the right pixels of the right tiles."""
import numpy as np

from mmlesion.structures import Tracklet
from mmlesion.visualization.overlays import (
    DET_BGR,
    GT_BGR,
    OTHER_BGR,
    hu_to_display,
    render_volume_overlay,
)


def test_hu_window():
    img = hu_to_display(np.array([[-175.0, 50.0, 275.0, 1000.0]]))
    assert img.shape == (1, 4, 3)
    assert img[0, :, 0].tolist() == [0, 128, 255, 255]


def test_volume_overlay_tiles():
    slices = {z: np.full((128, 128), 40.0, dtype=np.float32) for z in range(10)}
    trk = Tracklet([2, 3, 4], [[10, 10, 50, 50, 0.4], [10, 10, 50, 50, 0.9],
                               [12, 12, 50, 50, 0.5]])
    gt = np.array([[3, 60, 60, 90, 90]])
    img = render_volume_overlay(slices.__getitem__, [trk], gt, title='v', tile_px=128)
    # title bar 16 px, then per tile a 14 px caption and the 128 px slice (scale 1)
    assert img.shape == (16 + 14 + 128, 2 * 128, 3)
    top = 16 + 14
    # tile 0: the tracklet's best slice (z=3) with its box and the ground truth of that slice
    assert tuple(img[top + 10, 30]) == DET_BGR
    assert tuple(img[top + 75, 60]) == GT_BGR
    # tile 1: the ground-truth slice with the tracklet box on it drawn as "other"
    assert tuple(img[top + 30, 128 + 10]) == OTHER_BGR
    assert tuple(img[top + 75, 128 + 90]) == GT_BGR
    grey = hu_to_display(np.array([[40.0]]))[0, 0]
    assert tuple(img[top + 100, 20]) == tuple(grey)
