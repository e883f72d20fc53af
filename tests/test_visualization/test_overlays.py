"""Overlay images: boxes land on the right pixels of the right tiles, in the colour of their P3D
outcome (found / missed ground truth, hit / false-positive tracklet), under a legend, with
labels that do not overlap."""
import numpy as np

from mmlesion.structures import Tracklet
from mmlesion.visualization.overlays import (
    DET_BGR,
    GT_BGR,
    HEAD_PX,
    HIT_BGR,
    LEGEND,
    MISS_BGR,
    draw_boxes,
    hu_to_display,
    place_label,
    render_volume_overlay,
)


def test_hu_window():
    img = hu_to_display(np.array([[-175.0, 50.0, 275.0, 1000.0]]))
    assert img.shape == (1, 4, 3)
    assert img[0, :, 0].tolist() == [0, 128, 255, 255]


def _colours(img):
    return {tuple(int(c) for c in px) for px in img.reshape(-1, 3)}


def test_volume_overlay_tiles_miss_and_false_positive():
    slices = {z: np.full((128, 128), 40.0, dtype=np.float32) for z in range(10)}
    trk = Tracklet([2, 3, 4], [[10, 10, 50, 50, 0.4], [10, 10, 50, 50, 0.9],
                               [12, 12, 50, 50, 0.5]])
    gt = np.array([[3, 60, 60, 90, 90]])
    img = render_volume_overlay(slices.__getitem__, [trk], gt, title='v', tile_px=128)
    # title and legend bar, then per tile a 14 px caption and the 128 px slice (scale 1)
    assert img.shape == (HEAD_PX + 14 + 128, 2 * 128, 3)
    top = HEAD_PX + 14
    # tile 0: the tracklet's best slice (z=3): a false positive; the lesion there is missed
    assert tuple(img[top + 10, 30]) == DET_BGR
    assert tuple(img[top + 75, 60]) == MISS_BGR
    # tile 1: the ground-truth slice with the tracklet box on it
    assert tuple(img[top + 30, 128 + 10]) == DET_BGR
    assert tuple(img[top + 75, 128 + 90]) == MISS_BGR
    grey = hu_to_display(np.array([[40.0]]))[0, 0]
    assert tuple(img[top + 100, 20]) == tuple(grey)
    # the legend names every colour
    assert {c for _, c in LEGEND} <= _colours(img[:HEAD_PX])


def test_volume_overlay_hit_colours():
    slices = {z: np.full((128, 128), 40.0, dtype=np.float32) for z in range(10)}
    hit = Tracklet([3, 4], [[61, 61, 90, 90, 0.9], [61, 61, 90, 90, 0.8]])
    fp = Tracklet([6], [[5, 5, 20, 20, 0.7]])
    gt = np.array([[3, 60, 60, 90, 90]])
    img = render_volume_overlay(slices.__getitem__, [hit, fp], gt, tile_px=128)
    top = HEAD_PX + 14
    assert tuple(img[top + 75, 61]) == HIT_BGR  # the hit tracklet on its best slice
    assert tuple(img[top + 75, 60]) == GT_BGR  # the lesion, found
    assert tuple(img[top + 12, 128 + 5]) == DET_BGR  # tile 1: the false positive


def test_labels_do_not_overlap():
    image = np.zeros((200, 200, 3), np.uint8)
    placed = []
    boxes = np.array([[60, 60, 100, 100]] * 6 + [[0, 0, 30, 10], [170, 185, 199, 199]])
    labels = [f'#{i} 0.{i}9' for i in range(len(boxes))]
    draw_boxes(image, boxes, DET_BGR, labels=labels, placed=placed)
    assert len(placed) == len(boxes)
    for i, a in enumerate(placed):
        assert 0 <= a[0] and a[2] <= 200 and 0 <= a[1] and a[3] <= 200, a
        for b in placed[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    # a label finds a free place next to its box when the first choice is taken
    placed = [(10, 30, 200, 47)]
    x, y = place_label('#0 0.99', (20, 50, 60, 90), (200, 200), placed)
    assert y > 90  # below the box, since above it is taken
