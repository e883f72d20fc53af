"""Table I of the paper: how complete the label set of V_H^test is after harvesting
(docs/method.md#harvest-table1), plain numpy.

With G the complete labels of V_H^test and R its original RECIST marks, the label set at
threshold ``t`` is ``R ∪ {harvested proposals with score >= t}``:

* a harvested proposal is correct when it hits a lesion of G by the P3D rule (a box on the
  lesion's slice with ``+1`` IoU >= 0.5); R's marks count as correct (precision 1 by
  assumption);
* ``precision(t) = (|R| + correct harvested) / (|R| + all harvested)``;
* ``recall(t)`` = the fraction of G hit by a mark of R or by a harvested proposal;
* "recall at P% precision" = the largest recall over the thresholds whose precision is
  ``>= P%``.  Cumulative rows (``R ∪ P_H,1^+ ∪ ... ∪ P_H,i^+``) pool the harvested proposals of
  rounds ``1..i-1`` (``P_H,j^+``: those at or above round ``j``'s chosen threshold) with every
  candidate of round ``i`` and sort them by their scores (:func:`cumulative_candidates`): the
  earlier rounds' harvests are labels by then, round ``i``'s threshold is what the curve
  sweeps.
"""
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmlesion.evaluation.functional.p3d import p3d_overlaps
from mmlesion.structures.conventions import EVAL_PLUS_ONE
from mmlesion.structures.volume_key import normalize_key

__all__ = ['HarvestCurve', 'HarvestCandidates', 'mark_hits', 'candidate_hits', 'harvest_curve',
           'cumulative_candidates', 'recall_at_precisions', 'TABLE1_PRECISIONS']

TABLE1_PRECISIONS = (0.8, 0.85, 0.9, 0.95)
P3D_IOU_THR = 0.5


class HarvestCandidates(NamedTuple):
    """Harvested proposals of V_H^test with what they hit.

    Attributes:
        scores: ``(n,)`` their scores (``s_g`` before the LPC, ``s_g * s_c`` after).
        gt: ``(n,)`` int64 global index of the lesion of G each hits (largest P3D IoU), -1 when
            none (a wrong harvest).
    """
    scores: np.ndarray
    gt: np.ndarray

    @staticmethod
    def concat(parts: Sequence['HarvestCandidates']) -> 'HarvestCandidates':
        parts = list(parts)
        if not parts:
            return HarvestCandidates(np.zeros(0), np.zeros(0, np.int64))
        return HarvestCandidates(np.concatenate([p.scores for p in parts]).astype(np.float64),
                                 np.concatenate([p.gt for p in parts]).astype(np.int64))


class HarvestCurve(NamedTuple):
    """Precision / recall of ``R ∪ {harvested with score >= t}`` at every distinct score.

    ``thresholds[0]`` is ``+inf`` (R alone); arrays have one more entry than distinct scores.
    """
    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_harvested: np.ndarray  # proposals with score >= t
    num_gt: int
    num_marks: int


def _gt_offsets(gt: Mapping[str, np.ndarray]) -> Dict[str, int]:
    offsets, n = {}, 0
    for key in sorted(gt):
        offsets[key] = n
        n += len(gt[key])
    return offsets


def mark_hits(gt: Mapping[str, np.ndarray], marks: Mapping[str, np.ndarray],
              plus_one: bool = EVAL_PLUS_ONE, iou_thr: float = P3D_IOU_THR) -> np.ndarray:
    """Which lesions of G the RECIST marks R hit.

    Args:
        gt: ``{key: (m, 5) [z, x1, y1, x2, y2]}`` complete labels (mmlesion frame).
        marks: ``{key: (r, 5)}`` the original marks of the same volumes (missing keys: none).

    Returns:
        ``(G,)`` bool in the order of sorted keys, then each volume's rows.
    """
    out = []
    for key in sorted(gt):
        g = np.asarray(gt[key], dtype=np.float64).reshape(-1, 5)
        r = np.asarray(marks.get(key, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        if len(g) == 0:
            continue
        if len(r) == 0:
            out.append(np.zeros(len(g), bool))
            continue
        # a mark is a one-slice tracklet: the same hit rule as a proposal's
        tracklets = [[(int(m[0]), [*m[1:5], 1.0])] for m in r]
        ov = p3d_overlaps(g, tracklets, plus_one=plus_one)  # (r, m)
        out.append((ov >= iou_thr).any(axis=0))
    return np.concatenate(out) if out else np.zeros(0, bool)


def candidate_hits(gt: Mapping[str, np.ndarray], keys: Sequence[str], tracklets: Sequence,
                   plus_one: bool = EVAL_PLUS_ONE, iou_thr: float = P3D_IOU_THR) -> np.ndarray:
    """``(n,)`` int64: the lesion of G (global index, as :func:`mark_hits`) each proposal hits
    best by the P3D rule, -1 when none; proposals of volumes outside G are an error."""
    offsets = _gt_offsets(gt)
    out = np.full(len(keys), -1, dtype=np.int64)
    by_key: Dict[str, List[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(normalize_key(k), []).append(i)
    for key, idx in by_key.items():
        if key not in gt:
            raise ValueError(f'proposal of volume {key}, which the complete labels do not hold')
        g = np.asarray(gt[key], dtype=np.float64).reshape(-1, 5)
        if len(g) == 0:
            continue
        ov = p3d_overlaps(g, [tracklets[i] for i in idx], plus_one=plus_one)  # (n, m)
        best = ov.argmax(axis=1)
        hit = ov[np.arange(len(idx)), best] >= iou_thr
        out[np.asarray(idx)[hit]] = offsets[key] + best[hit]
    return out


def cumulative_candidates(earlier: Sequence[Tuple[HarvestCandidates, Optional[float]]],
                          latest: HarvestCandidates) -> HarvestCandidates:
    """The candidates of the row ``R ∪ P_H,1^+ ∪ ... ∪ P_H,i^+``.

    Args:
        earlier: rounds ``1..i-1``: each round's candidates (lesion scores) with the threshold
            it harvested at (None: it harvested nothing).
        latest: every candidate of round ``i``.

    Returns:
        The harvested proposals of the earlier rounds (score ``>=`` their round's threshold)
        followed by ``latest``; :func:`harvest_curve` sorts them by score.
    """
    parts = []
    for cand, thr in earlier:
        if thr is None:
            continue
        keep = np.asarray(cand.scores, dtype=np.float64) >= float(thr)
        parts.append(HarvestCandidates(np.asarray(cand.scores)[keep], np.asarray(cand.gt)[keep]))
    return HarvestCandidates.concat(parts + [latest])


def harvest_curve(r_hits: np.ndarray, num_marks: int,
                  candidates: HarvestCandidates) -> HarvestCurve:
    """The PR curve of ``R ∪ {candidates with score >= t}`` over every distinct score ``t``.

    Args:
        r_hits: ``(G,)`` bool, the lesions R hits (:func:`mark_hits`).
        num_marks: ``|R|``, the number of RECIST marks (all counted correct).
        candidates: the harvested proposals and their hits (:func:`candidate_hits`).
    """
    r_hits = np.asarray(r_hits, dtype=bool)
    n_gt = int(r_hits.size)
    scores = np.asarray(candidates.scores, dtype=np.float64)
    gt = np.asarray(candidates.gt, dtype=np.int64)
    order = np.argsort(-scores, kind='stable')
    scores, gt = scores[order], gt[order]
    # recall: a lesion counts from the first (highest-scored) proposal hitting it, unless R has it
    first_new = np.zeros(len(gt), bool)
    seen = r_hits.copy()
    for i, g in enumerate(gt):
        if g >= 0 and not seen[g]:
            seen[g] = True
            first_new[i] = True
    correct = np.cumsum(gt >= 0)
    found = int(r_hits.sum()) + np.cumsum(first_new)
    count = np.arange(1, len(gt) + 1)
    # one point per distinct score: a threshold takes every proposal tied with it
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1] if len(scores) else \
        np.zeros(0, np.int64)
    denom = float(num_marks) + count[last]
    precision = np.r_[1.0, (num_marks + correct[last]) / np.maximum(denom, 1e-12)]
    recall = np.r_[r_hits.sum(), found[last]] / max(n_gt, 1)
    return HarvestCurve(thresholds=np.r_[np.inf, scores[last]], precision=precision,
                        recall=recall, num_harvested=np.r_[0, count[last]], num_gt=n_gt,
                        num_marks=int(num_marks))


def recall_at_precisions(curve: HarvestCurve,
                         precisions: Sequence[float] = TABLE1_PRECISIONS) -> Dict[str, float]:
    """``{'recall@0.9': r, ...}``: the largest recall over the curve's points with precision
    ``>= P`` (the R-alone point always qualifies: precision 1)."""
    out = {}
    for p in precisions:
        ok = curve.precision >= float(p) - 1e-12
        out[f'recall@{float(p):g}'] = float(curve.recall[ok].max()) if ok.any() else 0.0
    return out
