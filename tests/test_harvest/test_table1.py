"""Table I on hand-made lesions, marks and harvested proposals."""
import numpy as np
import pytest

from mmlesion.harvest.table1 import (
    HarvestCandidates,
    candidate_hits,
    cumulative_candidates,
    harvest_curve,
    mark_hits,
    recall_at_precisions,
)

A = '000001_01_01_001-010'
B = '000002_01_01_001-010'
# complete labels: A has two lesions (slices 3 and 6), B one (slice 4)
GT = {A: np.array([[3, 10, 10, 30, 30], [6, 50, 50, 70, 70]], float),
      B: np.array([[4, 100, 100, 120, 120]], float)}


def test_marks_hit_by_the_p3d_rule():
    marks = {A: np.array([[3, 11, 11, 31, 31]], float),  # same slice, IoU ~0.82: hit
             B: np.array([[5, 100, 100, 120, 120]], float)}  # other slice: no hit
    assert mark_hits(GT, marks).tolist() == [True, False, False]


def test_candidates_hit_the_lesion_on_its_slice():
    trks = [[(5, [50, 50, 70, 70, 0.9]), (6, [50, 50, 70, 70, 0.8])],  # A lesion 1 (global 1)
            [(2, [10, 10, 30, 30, 0.9])],  # A: misses slice 3
            [(4, [100, 100, 121, 121, 0.7])]]  # B lesion (global 2)
    assert candidate_hits(GT, [A, A, B], trks).tolist() == [1, -1, 2]
    with pytest.raises(ValueError, match='complete labels do not hold'):
        candidate_hits(GT, ['000009_01_01_001-010'], trks[:1])


def test_curve_and_recall_at_precision_by_hand():
    r_hits = np.array([True, False, False])  # R: one mark, hitting lesion 0
    cand = HarvestCandidates(scores=np.array([0.9, 0.8, 0.7, 0.6]),
                             gt=np.array([1, -1, 1, 2]))  # hit, wrong, duplicate hit, hit
    c = harvest_curve(r_hits, 1, cand)
    # t=inf: R alone (1/3 recall, precision 1); then (|R| + correct) / (|R| + harvested)
    assert c.thresholds.tolist() == [np.inf, 0.9, 0.8, 0.7, 0.6]
    np.testing.assert_allclose(c.precision, [1, 2 / 2, 2 / 3, 3 / 4, 4 / 5])
    np.testing.assert_allclose(c.recall, [1 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0])
    assert c.num_harvested.tolist() == [0, 1, 2, 3, 4]
    r = recall_at_precisions(c, (0.8, 0.95))
    assert r == {'recall@0.8': pytest.approx(1.0), 'recall@0.95': pytest.approx(2 / 3)}


def test_tied_scores_form_one_threshold():
    cand = HarvestCandidates(np.array([0.5, 0.5]), np.array([1, -1]))
    c = harvest_curve(np.array([False, False, False]), 0, cand)
    np.testing.assert_allclose(c.precision, [1.0, 0.5])
    np.testing.assert_allclose(c.recall, [0.0, 1 / 3])


def test_pooling_rounds_sorts_by_score():
    r1 = HarvestCandidates(np.array([0.9]), np.array([2]))
    r2 = HarvestCandidates(np.array([0.95, 0.1]), np.array([1, -1]))
    c = harvest_curve(np.array([True, False, False]), 1, HarvestCandidates.concat([r1, r2]))
    np.testing.assert_allclose(c.recall, [1 / 3, 2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(c.precision, [1.0, 1.0, 1.0, 3 / 4])


def test_cumulative_row_takes_what_earlier_rounds_harvested():
    """R ∪ P_H,1^+ ∪ P_H,2^+: round 1 adds only what it harvested (score >= its threshold 0.5),
    round 2 all its candidates; sorted by score together."""
    r1 = HarvestCandidates(np.array([0.9, 0.3]), np.array([2, 0]))  # 0.3: never harvested
    r2 = HarvestCandidates(np.array([0.95, 0.6, 0.1]), np.array([1, -1, 3]))
    pooled = cumulative_candidates([(r1, 0.5)], r2)
    np.testing.assert_allclose(pooled.scores, [0.9, 0.95, 0.6, 0.1])
    np.testing.assert_array_equal(pooled.gt, [2, 1, -1, 3])
    # G: 4 lesions, R (1 mark) hits lesion 0; order 0.95 (1), 0.9 (2), 0.6 (miss), 0.1 (3)
    c = harvest_curve(np.array([True, False, False, False]), 1, pooled)
    np.testing.assert_allclose(c.recall, [1 / 4, 2 / 4, 3 / 4, 3 / 4, 1.0])
    np.testing.assert_allclose(c.precision, [1.0, 1.0, 1.0, 3 / 4, 4 / 5])
    assert recall_at_precisions(c, (0.8, 0.95)) == {'recall@0.8': 1.0, 'recall@0.95': 0.75}
    # a round without a threshold harvested nothing; the first row is round 1's candidates
    assert cumulative_candidates([(r1, None)], r2).scores.tolist() == [0.95, 0.6, 0.1]
    assert cumulative_candidates([], r1).scores.tolist() == [0.9, 0.3]
