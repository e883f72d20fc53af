import math

import numpy as np
import pytest

from mmlesion.datasets.slice_sampling import (
    InterpolationPlan,
    apply_hu_window,
    apply_window,
    blend_slices,
    channel_groups,
    interpolation_plan,
    interval_is_usable,
    normalize_window,
    sample_positions,
    window_to_hu,
)


def test_apply_hu_window_default_maps_minus1024_3071_to_0_255():
    hu = np.array([-2000, -1024, 1023.5, 3071, 5000], dtype=np.float32)
    out = apply_hu_window(hu)
    assert out.dtype == np.float32
    # (1023.5 + 1024) / 4095 * 255 = 127.5
    np.testing.assert_allclose(out, [0, 0, 127.5, 255, 255], atol=1e-4)


def test_apply_hu_window_custom_window_and_range():
    out = apply_hu_window(np.array([-200.0, -175.0, 50.0, 275.0, 400.0]), -175, 275, out=(-1, 1))
    np.testing.assert_allclose(out, [-1, -1, 0, 1, 1], atol=1e-6)


def test_apply_hu_window_zero_width_does_not_divide_by_zero():
    out = apply_hu_window(np.array([-10.0, 0.0, 10.0]), 0, 0)
    np.testing.assert_array_equal(out, [0, 0, 0])
    assert np.all(np.isfinite(out))
    with pytest.raises(ValueError, match='low <= high'):
        apply_hu_window(np.zeros(2), 10, 0)


def test_composite_window_is_the_mean_of_its_windows():
    wins = [(-1024, 3071), (-1000, 200), (-160, 240)]
    hu = np.array([-2000, -1000, -850, -160, 20, 64, 240, 3071, 4000], dtype=np.float32)
    out = apply_window(hu, wins)
    assert out.dtype == np.float32
    # by hand: mean of the three [0, 1] images, times 255
    full = (np.clip(hu, -1024, 3071) + 1024) / 4095
    lung = (np.clip(hu, -1000, 200) + 1000) / 1200
    soft = (np.clip(hu, -160, 240) + 160) / 400
    np.testing.assert_allclose(out, (full + lung + soft) / 3 * 255, atol=1e-3)
    # e.g. a 44 HU liver lesion (20 vs 64 HU): 13.4 levels instead of 2.7 with the full window
    assert out[5] - out[4] == pytest.approx(255 * 44 * (1 / 4095 + 1 / 1200 + 1 / 400) / 3,
                                            abs=1e-3)
    assert apply_hu_window(np.float32(64)) - apply_hu_window(np.float32(20)) == pytest.approx(
        2.74, abs=0.01)
    # one window, given alone or in a list, is apply_hu_window exactly
    np.testing.assert_array_equal(apply_window(hu, [(-160, 240)]), apply_hu_window(hu, -160, 240))
    np.testing.assert_array_equal(apply_window(hu, (-1024, 3071), (-1, 1)),
                                  apply_hu_window(hu, out=(-1, 1)))


def test_window_to_hu_inverts_inside_the_span():
    wins = [(-1024, 3071), (-1000, 200), (-160, 240)]
    hu = np.array([-1024, -900, -100, 0, 50, 500, 3071], dtype=np.float32)
    np.testing.assert_allclose(window_to_hu(apply_window(hu, wins), wins), hu, atol=0.05)
    np.testing.assert_allclose(window_to_hu(apply_window(hu, (-175, 275)), (-175, 275)),
                               np.clip(hu, -175, 275), atol=0.01)
    # disjoint windows: the flat stretch between them maps to its lowest HU
    gap = [(-100, 0), (100, 200)]
    assert window_to_hu(apply_window(np.float32(50), gap), gap) == pytest.approx(0.0)
    assert window_to_hu(np.float32(3.0), (7, 7)) == 7.0


@pytest.mark.parametrize('bad', [(10, 0), [(0, 1), (5, 4)], [], 'soft', (0, float('inf')),
                                 (1, 2, 3)])
def test_normalize_window_rejects(bad):
    with pytest.raises(ValueError, match='window'):
        normalize_window(bad)


def test_normalize_window_forms():
    assert normalize_window((-175, 275)) == (-175.0, 275.0)
    assert normalize_window([[-175, 275]]) == (-175.0, 275.0)
    assert normalize_window([(-1, 1), [2, 3]]) == ((-1.0, 1.0), (2.0, 3.0))


@pytest.mark.parametrize('value,usable', [(None, False), (0, False), (0.0, False),
                                          (float('nan'), False), (5.0, True), (0.625, True)])
def test_interval_is_usable(value, usable):
    assert interval_is_usable(value) is usable


def test_interval_negative_is_an_error():
    with pytest.raises(ValueError, match='slice interval'):
        interval_is_usable(-1.0)


@pytest.mark.parametrize('interval,expected', [
    (5.0, [-0.4, 0.0, 0.4]),
    (2.5, [-0.8, 0.0, 0.8]),
    (0.625, [-3.2, 0.0, 3.2]),
    (2.0, [-1.0, 0.0, 1.0]),
    (1.0, [-2.0, 0.0, 2.0]),
])
def test_sample_positions_3_slices(interval, expected):
    np.testing.assert_allclose(sample_positions(interval, 3), expected, atol=1e-12)


def test_sample_positions_9_slices_0625mm():
    expected = np.arange(-4, 5) * 3.2
    np.testing.assert_allclose(sample_positions(0.625, 9), expected, atol=1e-12)


def test_sample_positions_snaps_float_noise():
    # 2 / 0.4 is 5.000000000000001 in floating point
    offsets = sample_positions(0.4, 3)
    assert offsets.tolist() == [-5.0, 0.0, 5.0]


@pytest.mark.parametrize('interval', [0, None, float('nan')])
def test_sample_positions_unusable_interval_repeats_key(interval):
    assert sample_positions(interval, 9).tolist() == [0.0] * 9


def test_sample_positions_rejects_even_counts():
    with pytest.raises(ValueError, match='odd'):
        sample_positions(5.0, 4)


def _plan(interval, num_slices=3, key=20, slice_range=(0, 40), available=None):
    return interpolation_plan(key, slice_range, available, sample_positions(interval, num_slices))


def test_plan_5mm_3_slices():
    plan = _plan(5.0)
    assert plan.indices.tolist() == [[20, 19], [20, 20], [20, 21]]
    np.testing.assert_allclose(plan.weights, [[0.6, 0.4], [1.0, 0.0], [0.6, 0.4]])


def test_plan_2p5mm_3_slices():
    plan = _plan(2.5)
    assert plan.indices.tolist() == [[20, 19], [20, 20], [20, 21]]
    np.testing.assert_allclose(plan.weights, [[0.2, 0.8], [1.0, 0.0], [0.2, 0.8]])


def test_plan_0625mm_3_slices():
    plan = _plan(0.625)
    assert plan.indices.tolist() == [[17, 16], [20, 20], [23, 24]]
    np.testing.assert_allclose(plan.weights, [[0.8, 0.2], [1.0, 0.0], [0.8, 0.2]])


def test_plan_0625mm_9_slices():
    plan = _plan(0.625, num_slices=9)
    # offsets -12.8, -9.6, -6.4, -3.2, 0, 3.2, 6.4, 9.6, 12.8
    assert plan.indices.tolist() == [[8, 7], [11, 10], [14, 13], [17, 16], [20, 20],
                                     [23, 24], [26, 27], [29, 30], [32, 33]]
    np.testing.assert_allclose(plan.weights[:, 1],
                               [0.8, 0.6, 0.4, 0.2, 0.0, 0.2, 0.4, 0.6, 0.8], atol=1e-9)
    np.testing.assert_allclose(plan.weights.sum(axis=1), 1.0)


def test_plan_integer_offsets_use_one_slice():
    plan = _plan(1.0)
    assert plan.indices.tolist() == [[18, 18], [20, 20], [22, 22]]
    assert plan.weights.tolist() == [[1, 0], [1, 0], [1, 0]]
    assert plan.needed_slices() == [18, 20, 22]


def test_plan_outside_slice_range_steps_toward_key():
    # range starts at 18: -3.2 wants 17 and 16 -> both become 18
    plan = _plan(0.625, key=20, slice_range=(18, 40))
    assert plan.indices[0].tolist() == [18, 18]
    assert plan.weights[0].tolist() == [1.0, 0.0]
    # key at the last slice: the + side repeats the key
    plan = _plan(5.0, key=40, slice_range=(0, 40))
    assert plan.indices[2].tolist() == [40, 40]
    assert plan.weights[2].tolist() == [1.0, 0.0]


def test_plan_missing_slice_on_disk_steps_toward_key():
    available = set(range(0, 41)) - {23, 16, 15, 14}
    plan = _plan(0.625, available=available)
    # +3.2: 23 missing -> 22 (weight 0.8), 24 present (0.2)
    assert plan.indices[2].tolist() == [22, 24]
    np.testing.assert_allclose(plan.weights[2], [0.8, 0.2])
    # -3.2: 17 present, 16 missing -> 17: same slice, weight 1
    assert plan.indices[0].tolist() == [17, 17]
    assert plan.weights[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize('interval', [0, None, float('nan')])
def test_plan_unusable_interval_repeats_key(interval):
    plan = _plan(interval, num_slices=9)
    assert plan.indices.tolist() == [[20, 20]] * 9
    assert plan.weights.tolist() == [[1.0, 0.0]] * 9


def test_plan_key_must_be_available():
    with pytest.raises(ValueError, match='key slice 50'):
        interpolation_plan(50, (0, 40), None, [0.0])
    with pytest.raises(ValueError, match='key slice 20'):
        interpolation_plan(20, (0, 40), {19, 21}, [0.0])


def test_blend_slices_values_5mm():
    slices = {i: np.full((2, 3), 10.0 * i, dtype=np.float32) for i in range(0, 41)}
    stack = blend_slices(_plan(5.0), slices)
    assert stack.shape == (2, 3, 3) and stack.dtype == np.float32
    # 0.6 * 200 + 0.4 * 190 = 196 ; key 200 ; 0.6 * 200 + 0.4 * 210 = 204
    np.testing.assert_allclose(stack[0, 0], [196.0, 200.0, 204.0], atol=1e-4)


def test_blend_slices_reads_each_needed_slice_once():
    calls = []

    def getter(index):
        calls.append(index)
        return np.full((1, 1), float(index), dtype=np.float32)

    stack = blend_slices(_plan(0.625, num_slices=9), getter)
    assert sorted(calls) == sorted(set(calls))
    assert len(calls) == 17  # key + 2 per other channel
    np.testing.assert_allclose(stack[0, 0], 20 + np.arange(-4, 5) * 3.2, atol=1e-4)


def test_nine_slice_channel_layout():
    """Channels ordered by increasing slice index; key at channel 4; MULAN groups of 3."""
    slices = {i: np.full((1, 1), float(i), dtype=np.float32) for i in range(0, 41)}
    stack = blend_slices(_plan(2.0, num_slices=9), slices)[0, 0]
    assert stack.tolist() == [16, 17, 18, 19, 20, 21, 22, 23, 24]
    assert np.all(np.diff(stack) > 0)
    groups = channel_groups(9)
    assert groups == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert stack[list(groups[1])].tolist() == [19, 20, 21]
    assert stack[9 // 2] == 20
    assert channel_groups(3) == [(0, 1, 2)]
    with pytest.raises(ValueError):
        channel_groups(9, group_size=2)


def test_interpolation_plan_is_named_tuple():
    plan = _plan(5.0)
    assert isinstance(plan, InterpolationPlan)
    assert plan.indices.dtype == np.int64 and plan.weights.dtype == np.float64
    assert not math.isnan(plan.weights.sum())
