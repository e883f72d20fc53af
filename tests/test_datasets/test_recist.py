"""RECIST axes of binary masks and DeepLesion's RECIST box, on hand-checkable shapes."""
import math

import numpy as np
import pytest

from mmlesion.datasets.recist import recist_box, recist_from_mask


def _direction(seg):
    x1, y1, x2, y2 = seg
    d = np.array([x2 - x1, y2 - y1], dtype=float)
    return d / np.linalg.norm(d)


def _angle_deg(seg):
    x1, y1, x2, y2 = seg
    return math.degrees(math.atan2(y2 - y1, x2 - x1)) % 180.0


def test_axis_aligned_rectangle():
    # Pixel centres x 10..30, y 5..15: a 20 x 10 px rectangle between centres.
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:16, 10:31] = True
    r = recist_from_mask(mask)
    # The long axis is a diagonal between opposite corner pixel centres.
    x1, y1, x2, y2 = r['long_axis']
    assert {(x1, y1), (x2, y2)} in ({(10, 5), (30, 15)}, {(10, 15), (30, 5)})
    assert r['long_px'] == pytest.approx(math.sqrt(20 ** 2 + 10 ** 2), abs=1e-12)
    assert r['long_mm'] == pytest.approx(r['long_px'])
    # Perpendicular to the diagonal (2, 1): the longest chord runs from the bottom to the top
    # edge (dy = 10, dx = 5): 5 * sqrt(5) = 11.18 px; samples every 0.1 px lose at most 0.2.
    assert 5 * math.sqrt(5) - 0.2 <= r['short_px'] <= 5 * math.sqrt(5) + 1e-9
    assert abs(_direction(r['long_axis']) @ _direction(r['short_axis'])) < 1e-9
    sx = r['short_axis']
    assert 10 <= min(sx[0], sx[2]) and max(sx[0], sx[2]) <= 30
    assert 5 - 1e-9 <= min(sx[1], sx[3]) and max(sx[1], sx[3]) <= 15 + 1e-9


def test_disk():
    yy, xx = np.mgrid[:61, :61]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 10 ** 2
    r = recist_from_mask(mask)
    # Pixel centres at distance exactly 10 are in: the diameter between centres is 20.
    assert r['long_px'] == pytest.approx(20.0)
    assert 19.6 <= r['short_px'] <= 20.0 + 1e-9
    assert abs(_direction(r['long_axis']) @ _direction(r['short_axis'])) < 1e-9
    # The short axis passes near the centre.
    sx = r['short_axis']
    mid = np.array([(sx[0] + sx[2]) / 2, (sx[1] + sx[3]) / 2])
    assert np.linalg.norm(mid - 30) < 1.0


def test_rotated_ellipse():
    yy, xx = np.mgrid[:101, :101].astype(float)
    th = math.radians(30.0)
    u = (xx - 50) * math.cos(th) + (yy - 50) * math.sin(th)
    v = -(xx - 50) * math.sin(th) + (yy - 50) * math.cos(th)
    mask = (u / 20.0) ** 2 + (v / 8.0) ** 2 <= 1.0
    r = recist_from_mask(mask)
    # Semi-axes 20 and 8: diameters 40 and 16, a pixel less between pixel centres.
    assert 38.5 <= r['long_px'] <= 40.0
    assert 14.5 <= r['short_px'] <= 16.0
    assert abs(_angle_deg(r['long_axis']) - 30.0) < 2.0
    assert abs(_angle_deg(r['short_axis']) - 120.0) < 2.0


def test_anisotropic_spacing_measures_in_mm():
    # 21 x 11 pixel centres at 0.5 x 1.0 mm/px: a 10 x 10 mm square.  In mm both diagonals
    # are 14.14 mm and perpendicular: the short axis is the other diagonal.
    mask = np.zeros((20, 40), dtype=bool)
    mask[5:16, 10:31] = True
    r = recist_from_mask(mask, spacing_xy=(0.5, 1.0))
    assert r['long_mm'] == pytest.approx(math.sqrt(200.0))
    assert r['long_px'] == pytest.approx(math.sqrt(500.0))
    assert math.sqrt(200.0) - 0.2 <= r['short_mm'] <= math.sqrt(200.0) + 1e-9
    assert r['short_px'] == pytest.approx(r['long_px'], abs=0.3)


def test_non_convex_t_shape_short_axis_stays_inside():
    # A T: bar x 0..40, y 0..4; stem x 18..22, y 4..24 (pixel centres).
    mask = np.zeros((30, 45), dtype=bool)
    mask[0:5, 0:41] = True
    mask[4:25, 18:23] = True
    r = recist_from_mask(mask)
    assert r['long_px'] == pytest.approx(math.sqrt(40 ** 2 + 4 ** 2))
    # Perpendicular to the bar's diagonal (tilted atan(4/40) from vertical), the longest chord
    # inside the mask runs down the stem from y = 0 to y = 24: 24 / cos(5.71 deg) = 24.12 px.
    expected = 24.0 / math.cos(math.atan2(4, 40))
    assert expected - 0.2 <= r['short_px'] <= expected + 1e-9
    sx = r['short_axis']
    assert 18 - 1e-9 <= min(sx[0], sx[2]) and max(sx[0], sx[2]) <= 22 + 1e-9


def test_degenerate_masks():
    one = np.zeros((5, 5), dtype=bool)
    one[2, 3] = True
    r = recist_from_mask(one)
    assert r['long_axis'] == (3.0, 2.0, 3.0, 2.0) and r['long_px'] == 0 and r['short_px'] == 0
    line = np.zeros((5, 20), dtype=bool)
    line[2, 3:15] = True
    r = recist_from_mask(line)
    assert r['long_axis'] == (3.0, 2.0, 14.0, 2.0)
    assert r['long_px'] == 11.0 and r['short_px'] == 0.0
    with pytest.raises(ValueError, match='empty'):
        recist_from_mask(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match='2D'):
        recist_from_mask(np.ones((2, 3, 3), dtype=bool))
    with pytest.raises(ValueError, match='spacing'):
        recist_from_mask(one, spacing_xy=(0.0, 1.0))


def test_recist_box_pads_and_clips():
    recist = [10, 20, 30, 25, 18, 15, 22, 30]
    assert recist_box(recist) == [5.0, 10.0, 35.0, 35.0]
    assert recist_box(recist, pad_px=2) == [8.0, 13.0, 32.0, 32.0]
    # Clipped to the 0-based pixel centres of a 32 x 40 image.
    assert recist_box(recist, image_size=(32, 40)) == [5.0, 10.0, 31.0, 35.0]
    assert recist_box([1, 2, 3, 2, 2, 1, 2, 3], image_size=(10, 10)) == [0.0, 0.0, 8.0, 8.0]
    with pytest.raises(ValueError, match='8 finite numbers'):
        recist_box([1, 2, 3])


def test_translation_by_whole_pixels_translates_the_result_exactly():
    # Ties between equally long diameters must not depend on where the mask sits (the
    # generator measures lesions in a window, users on the full image).
    yy, xx = np.mgrid[:40, :40].astype(float)
    th = math.radians(50.0)
    u = (xx - 15.3) * math.cos(th) + (yy - 17.8) * math.sin(th)
    v = -(xx - 15.3) * math.sin(th) + (yy - 17.8) * math.cos(th)
    small = (u / 6.2) ** 2 + (v / 5.9) ** 2 <= 1.0
    big = np.zeros((300, 300), dtype=bool)
    big[211:251, 97:137] = small
    a = recist_from_mask(small, (0.726562, 0.726562))
    b = recist_from_mask(big, (0.726562, 0.726562))
    shift = np.array([97, 211] * 4, dtype=float)
    np.testing.assert_allclose(np.array(b['long_axis'] + b['short_axis']) - shift,
                               a['long_axis'] + a['short_axis'], atol=1e-9)
    assert a['long_px'] == b['long_px'] and a['short_mm'] == pytest.approx(b['short_mm'])
