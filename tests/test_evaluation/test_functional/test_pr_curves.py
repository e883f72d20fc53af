"""PR / ROC numbers of the LPC metric checked against hand computation."""
import math

import numpy as np
import pytest

from mmlesion.evaluation.functional.pr_curves import (
    average_precision,
    binary_summary,
    lpc_score_summary,
    pr_curve,
    recall_at_precision,
    roc_auc,
    threshold_at_precision,
)

# ranked: 0.9 P, 0.8 N, 0.7 P, 0.6 P, 0.5 N, 0.4 N ; unknown (-1) at 0.95 is left out
SCORES = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
LABELS = [-1, 1, 0, 1, 1, 0, 0]


def test_pr_curve_by_hand():
    c = pr_curve(SCORES, LABELS)
    assert (c.num_pos, c.num_neg) == (3, 3)
    np.testing.assert_allclose(c.thresholds, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    np.testing.assert_allclose(c.precision, [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5, 3 / 6])
    np.testing.assert_allclose(c.recall, [1 / 3, 1 / 3, 2 / 3, 1, 1, 1])


def test_average_precision_by_hand():
    # steps of recall 1/3 at precision 1, 2/3 and 3/4
    assert average_precision(SCORES, LABELS) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_roc_auc_by_hand_with_ties():
    # pairs (P, N): P=0.9 beats 3; P=0.7 beats 2 (0.5, 0.4); P=0.6 beats 2 -> 7 / 9
    assert roc_auc(SCORES, LABELS) == pytest.approx(7 / 9)
    # a tie counts one half: P 0.5 vs N 0.5, P 0.5 > N 0.1 -> (0.5 + 1) / 2
    assert roc_auc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)


def test_ties_enter_the_ranking_together():
    # P and N tied at the top: one point with precision 1/2, not 1 then 1/2
    c = pr_curve([0.8, 0.8, 0.1], [0, 1, 0])
    np.testing.assert_allclose(c.precision, [1 / 2, 1 / 3])
    assert average_precision([0.8, 0.8, 0.1], [0, 1, 0]) == pytest.approx(0.5)
    assert average_precision([0.8, 0.8, 0.1], [1, 0, 0]) == pytest.approx(0.5)


def test_recall_and_threshold_at_precision():
    assert recall_at_precision(SCORES, LABELS, 0.75) == pytest.approx(1.0)  # at 0.6: 3/4
    assert recall_at_precision(SCORES, LABELS, 0.9) == pytest.approx(1 / 3)
    assert recall_at_precision(SCORES, LABELS, 0.7) == pytest.approx(1.0)
    assert threshold_at_precision(SCORES, LABELS, 0.75) == pytest.approx(0.6)
    assert threshold_at_precision(SCORES, LABELS, 0.9) == pytest.approx(0.9)
    # nothing reaches precision 1 when the top proposal is a negative
    assert recall_at_precision([0.9, 0.1], [0, 1], 1.0) == 0.0
    assert threshold_at_precision([0.9, 0.1], [0, 1], 1.0) is None


def test_undefined_values_are_nan():
    assert math.isnan(roc_auc([0.3, 0.2], [0, 0]))
    assert math.isnan(average_precision([0.3, 0.2], [0, -1]))
    assert math.isnan(recall_at_precision([], [], 0.9))
    assert pr_curve([], []).thresholds.size == 0
    with pytest.raises(ValueError, match='same length'):
        roc_auc([0.1], [1, 0])


def test_lpc_score_summary_rescoring():
    # s_c alone ranks a negative first; s_g * s_c ranks both positives first
    s_g = [0.9, 0.8, 0.2]
    s_c = [0.5, 0.6, 0.9]
    labels = [1, 1, 0]
    out = lpc_score_summary(s_g, s_c, labels)
    assert set(out) == {'s_g', 's_c', 's_gc'}
    assert out['s_c']['roc_auc'] == 0.0
    assert out['s_gc']['pr_auc'] == pytest.approx(1.0)
    assert out['s_gc']['recall@0.95'] == pytest.approx(1.0)
    assert set(binary_summary(s_g, labels)) == {'roc_auc', 'pr_auc', 'recall@0.9',
                                                 'recall@0.95'}
