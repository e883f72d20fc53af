import numpy as np
import pytest

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmlesion.datasets.transforms import RescaleToSpacing

register_all_modules(init_default_scope=True)


def _results(h, w, c, spacing, boxes=((10.0, 20.0, 30.0, 40.0),)):
    img = np.arange(h * w * c, dtype=np.float32).reshape(h, w, c)
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), spacing=list(spacing),
                gt_bboxes=HorizontalBoxes(np.array(boxes, dtype=np.float32)),
                img_path='x/001.png')


@pytest.mark.parametrize('spacing,expected_scale,expected_size', [
    (0.6, 0.75, 150),  # 0.6 mm/px shrinks: 200 * 0.6 / 0.8
    (0.8, 1.0, 200),
    (0.98, 1.225, 245),  # 0.98 mm/px grows: 200 * 0.98 / 0.8
])
def test_scale_from_spacing(spacing, expected_scale, expected_size):
    rescale = TRANSFORMS.build(dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512))
    assert isinstance(rescale, RescaleToSpacing)
    assert rescale.compute_scale(200, 200, spacing, spacing) == pytest.approx(
        (expected_scale, expected_scale))
    out = rescale(_results(200, 200, 3, [spacing, spacing, 5.0]))
    assert out['img'].shape == (expected_size, expected_size, 3)
    assert out['img_shape'] == (expected_size, expected_size)
    sx, sy = out['scale_factor']
    assert sx == pytest.approx(expected_scale) and sy == pytest.approx(expected_scale)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), [[10 * sx, 20 * sy, 30 * sx, 40 * sy]],
                               rtol=1e-6)
    assert out['spacing_mm'] == pytest.approx((spacing / sx, spacing / sy))
    assert out['spacing'] == [spacing, spacing, 5.0]  # as loaded


def test_long_side_capped_and_nine_channels():
    # 0.98 / 0.8 = 1.225 would make 512 px -> 627 px: capped at 512, i.e. scale 1
    rescale = RescaleToSpacing(target_spacing_mm=0.8, max_size=512)
    assert rescale.compute_scale(512, 512, 0.98, 0.98) == pytest.approx((1.0, 1.0))
    # a 9-slice image, 60 x 40 px at 0.98 mm: 1.225 -> 73.5 px long side, cap 49 -> 49 / 60
    rescale = RescaleToSpacing(target_spacing_mm=0.8, max_size=49)
    out = rescale(_results(40, 60, 9, [0.98, 0.98, 2.0]))
    assert out['img'].shape == (33, 49, 9)  # 40 * 49 / 60 = 32.67 -> 33
    assert out['img'].dtype == np.float32
    sx, sy = out['scale_factor']
    assert sx == pytest.approx(49 / 60) and sy == pytest.approx(33 / 40)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), [[10 * sx, 20 * sy, 30 * sx, 40 * sy]],
                               rtol=1e-6)
    # every channel resized the same way: channel c of input is base + c, so is the output
    diff = out['img'][..., 1:] - out['img'][..., :-1]
    np.testing.assert_allclose(diff, 1.0, atol=1e-2)


def test_downscale_by_two_averages_pixels():
    # bilinear at exactly 0.5: each output pixel is the mean of a 2 x 2 block (cv2 INTER_LINEAR)
    rescale = RescaleToSpacing(target_spacing_mm=0.8, max_size=None)
    results = _results(4, 4, 9, [0.4, 0.4, 1.0])
    results['img'] = np.zeros((4, 4, 9), dtype=np.float32)
    results['img'][:2, :2, 4] = 100.0
    out = rescale(results)
    assert out['img'].shape == (2, 2, 9)
    assert out['img'][0, 0, 4] == pytest.approx(100.0)
    assert out['img'][1, 1, 4] == pytest.approx(0.0)


def test_keep_ratio_false_uses_both_spacings():
    rescale = RescaleToSpacing(target_spacing_mm=0.8, max_size=None, keep_ratio=False)
    out = rescale(_results(100, 100, 3, [0.8, 0.4, 1.0]))
    assert out['img'].shape == (50, 100, 3)
    assert out['spacing_mm'] == pytest.approx((0.8, 0.8))


def test_numpy_boxes_and_bad_spacing():
    rescale = RescaleToSpacing()
    results = _results(10, 10, 3, [0.4, 0.4, 1.0])
    results['gt_bboxes'] = np.array([[2.0, 2.0, 6.0, 6.0]], dtype=np.float32)
    out = rescale(results)
    assert isinstance(out['gt_bboxes'], np.ndarray)
    np.testing.assert_allclose(out['gt_bboxes'], [[1, 1, 3, 3]])
    for bad in (None, [0.0, 0.0, 1.0], [float('nan'), 1.0]):
        with pytest.raises(ValueError, match='spacing'):
            rescale(_results(10, 10, 3, [1, 1, 1]) | dict(spacing=bad))
