import numpy as np
import pytest
from scipy import interpolate

from mmlesion.evaluation.functional.froc import froc_from_hits, interp_sensitivity, voc_ap


def test_interp_hand_case_extrapolate_vs_clamp():
    fps, sens = [0.0, 0.5, 1.0], [0.2, 0.4, 0.6]
    t = [0.25, 1.0, 1.25, 2.5]
    # inside: linear; right of the curve: slope 0.2 / 0.5 = 0.4 per FP, clipped at 1
    np.testing.assert_allclose(interp_sensitivity(fps, sens, t), [0.3, 0.6, 0.7, 1.0])
    np.testing.assert_allclose(interp_sensitivity(fps, sens, t, 'clamp'), [0.3, 0.6, 0.6, 0.6])


def test_interp_matches_scipy_where_scipy_is_finite():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 30))
        x = np.cumsum(rng.uniform(0.05, 1.0, n)) - 0.05
        y = np.sort(rng.uniform(0, 1, n))
        t = np.linspace(0.0, x[-1] * 1.5, 23)
        ref = interpolate.interp1d(x, y, fill_value='extrapolate')(t)
        np.testing.assert_allclose(interp_sensitivity(x, y, t), np.clip(ref, 0, 1), atol=1e-12)
        inside = t <= x[-1]
        ref_clamp = np.where(inside, ref, y[-1])  # MULAN: interp1d inside, sens[-1] beyond
        ok = t >= x[0]
        np.testing.assert_allclose(interp_sensitivity(x, y, t, 'clamp')[ok], ref_clamp[ok],
                                   atol=1e-12)


def test_interp_matches_scipy_on_froc_curves_with_repeated_fp_levels():
    # a FROC curve: TPs keep the FP level, FPs step it; last detection an FP (scipy finite)
    is_fp = np.array([0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1])
    fps = np.cumsum(is_fp) / 4.0
    sens = np.cumsum(1 - is_fp) / 8.0
    t = [0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 4]
    ref = interpolate.interp1d(fps, sens, fill_value='extrapolate')(t)
    np.testing.assert_allclose(interp_sensitivity(fps, sens, t), ref, atol=1e-12)


def test_interp_degenerate_ends():
    # one FP level (e.g. ground truth fed back: no FP at all): flat at the final sensitivity
    np.testing.assert_allclose(interp_sensitivity([0, 0, 0], [1 / 3, 2 / 3, 1], [0.5, 16]), 1.0)
    # left of the first point: the line through the first points of the first two levels
    # (0.5, 0) and (1.0, 0.5) gives -0.25 at 0.25 -> clipped to 0
    np.testing.assert_allclose(interp_sensitivity([0.5, 0.5, 1.0], [0, 0.5, 0.5], [0.25]), 0.0)
    assert interp_sensitivity([], [], [1, 2]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match='non-decreasing'):
        interp_sensitivity([1, 0], [0, 1], [1])
    with pytest.raises(ValueError, match='interpolation mode'):
        interp_sensitivity([0], [1], [1], mode='nearest')


def test_voc_ap_by_hand():
    # envelope [1, 1, 2/3, 2/3]: 0.5 * 1 + 0.5 * 2/3
    assert voc_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 1 / 3)
    assert voc_ap([], []) == 0.0
    assert voc_ap([1.0], [1.0]) == 1.0


def test_froc_from_hits_counting_and_ties():
    # 4 detections, 2 GT, 2 images; det 2 duplicates GT 0, det 3 hits nothing
    scores = [0.9, 0.5, 0.5, 0.1]
    pairs = ([0, 2, 1], [0, 0, 1])
    res = froc_from_hits(scores, pairs, n_gt=2, n_images=2, fp_points=[0.5, 1.0])
    assert res.order.tolist() == [0, 1, 2, 3]  # ties keep the input order
    np.testing.assert_allclose(res.curve_sens, [0.5, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(res.curve_fps, [0, 0, 0, 0.5])  # the duplicate is no FROC FP
    np.testing.assert_allclose(res.precision, [1, 1, 2 / 3, 0.5])  # but an AP FP
    assert res.det_hit.tolist() == [True, True, True, False]
    assert res.gt_first_hit_rank.tolist() == [0, 1]
    assert res.ap == pytest.approx(1.0)
    dup_fp = froc_from_hits(scores, pairs, 2, 2, [0.5], froc_duplicates='fp')
    np.testing.assert_allclose(dup_fp.curve_fps, [0, 0, 0.5, 1.0])
    summary = res.summary()
    assert summary == {'AP': pytest.approx(1.0), 'sens@0.5': 1.0, 'sens@1': 1.0}


def test_froc_from_hits_rejects_bad_input():
    with pytest.raises(ValueError, match='non-finite score'):
        froc_from_hits([0.1, np.nan], ([], []), 1, 1)
    with pytest.raises(ValueError, match='FP denominator'):
        froc_from_hits([0.1], ([], []), 1, 0)
    with pytest.raises(ValueError, match='ap_duplicates'):
        froc_from_hits([0.1], ([], []), 1, 1, ap_duplicates='voc')
