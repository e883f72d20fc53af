"""Binary-classifier curves of lesion proposals (plain numpy): ROC-AUC, PR curve, average
precision, recall at a precision, the threshold that reaches a precision.

Used by :class:`~mmlesion.evaluation.LPCMetric` and ``tools/lpc_ablation.py`` (paper Fig. 5b)
on the proposal scores ``s_g`` (LPG objectness), ``s_c`` (LPC probability) and
``s_{g,c} = s_g s_c`` (paper Eq. 2; docs/method.md#lpc).

Conventions:

* ``labels``: 1 positive, 0 negative; anything else (the proposal files' ``-1`` = unknown) is
  left out by every function here.
* **Ties**: proposals with equal scores enter the ranking together (one threshold per distinct
  score), so no result depends on the order of tied proposals.
* **PR curve**: one point per distinct score ``t`` (descending), for the rule ``score >= t``:
  ``precision = TP / (TP + FP)``, ``recall = TP / P``.
* **Average precision** (PR-AUC): ``sum_n (R_n - R_{n-1}) P_n`` over those points with
  ``R_0 = 0`` -- the step-wise area without interpolation (scikit-learn's
  ``average_precision_score``), not the VOC envelope of
  :func:`~mmlesion.evaluation.functional.voc_ap`.
* **Recall at precision p**: the largest recall over the points whose precision is ``>= p``
  (0 when none reaches ``p``): the rule of the paper's Table I (docs/method.md#harvest-table1).
* **ROC-AUC**: the probability that a random positive scores above a random negative, ties
  counting one half (Mann-Whitney U from average ranks).

Undefined values (no positive, or no negative for ROC-AUC) are ``nan``.
"""
from typing import Dict, NamedTuple, Optional, Sequence

import numpy as np

__all__ = ['PRCurve', 'pr_curve', 'average_precision', 'roc_auc', 'recall_at_precision',
           'threshold_at_precision', 'binary_summary', 'lpc_score_summary', 'LPC_SCORES',
           'DEFAULT_PRECISIONS']

DEFAULT_PRECISIONS = (0.9, 0.95)
# score names of the LPC ablation (paper Fig. 5b): LPG objectness, LPC probability, product
LPC_SCORES = ('s_g', 's_c', 's_gc')


class PRCurve(NamedTuple):
    """Precision/recall after each distinct score, highest score first.

    Attributes:
        thresholds: ``(k,)`` the distinct scores, descending (rule: ``score >= threshold``).
        precision: ``(k,)``.
        recall: ``(k,)``.
        num_pos: positives among the labelled proposals.
        num_neg: negatives among the labelled proposals.
    """
    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_pos: int
    num_neg: int


def _labelled(scores, labels):
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f'scores and labels must have the same length, got {s.size} and '
                         f'{y.size}')
    keep = (y == 1) | (y == 0)
    s, y = s[keep], y[keep] == 1
    if not np.all(np.isfinite(s)):
        raise ValueError('scores must be finite')
    return s, y


def pr_curve(scores: Sequence[float], labels: Sequence[int]) -> PRCurve:
    """The precision-recall curve of ``scores`` against ``labels`` (see the module docstring).

    Returns:
        :class:`PRCurve`; empty arrays when no proposal is labelled; recall is ``nan`` when there
        is no positive.
    """
    s, y = _labelled(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if s.size == 0:
        e = np.zeros(0)
        return PRCurve(e, e, e, 0, 0)
    order = np.argsort(-s, kind='stable')
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last row of each tie group
    tp, fp = tp[last].astype(np.float64), fp[last].astype(np.float64)
    precision = tp / (tp + fp)
    recall = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
    return PRCurve(s[last], precision, recall, n_pos, n_neg)


def average_precision(scores: Sequence[float], labels: Sequence[int]) -> float:
    """PR-AUC: ``sum_n (R_n - R_{n-1}) P_n`` (no interpolation; ``nan`` without positives)."""
    curve = pr_curve(scores, labels)
    if curve.num_pos == 0:
        return float('nan')
    dr = np.diff(np.r_[0.0, curve.recall])
    return float(np.sum(dr * curve.precision))


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve, ties counting one half (``nan`` without both classes)."""
    s, y = _labelled(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    order = np.argsort(s, kind='stable')
    sorted_s = s[order]
    ranks = np.empty(s.size)
    # average rank (1-based) of each tie group
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s) != 0) + 1]
    ends = np.r_[starts[1:], s.size]
    group_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(group_rank, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def recall_at_precision(scores: Sequence[float], labels: Sequence[int],
                        precision: float) -> float:
    """The largest recall over the curve points with precision ``>= precision`` (0 if none;
    ``nan`` without positives)."""
    curve = pr_curve(scores, labels)
    if curve.num_pos == 0:
        return float('nan')
    ok = curve.precision >= float(precision) - 1e-12
    return float(curve.recall[ok].max()) if ok.any() else 0.0


def threshold_at_precision(scores: Sequence[float], labels: Sequence[int],
                           precision: float) -> Optional[float]:
    """The lowest score threshold (rule ``score >= t``) whose precision is ``>= precision``,
    i.e. the one giving :func:`recall_at_precision`; None when no threshold reaches it.

    This is how a harvest round picks its operating point: precision >= 95% on the completely
    annotated volumes (docs/method.md#harvesting, step 5).
    """
    curve = pr_curve(scores, labels)
    if curve.num_pos == 0:
        return None
    ok = np.flatnonzero(curve.precision >= float(precision) - 1e-12)
    if ok.size == 0:
        return None
    return float(curve.thresholds[ok.max()])  # recall never falls along the curve


def binary_summary(scores: Sequence[float], labels: Sequence[int],
                   precisions: Sequence[float] = DEFAULT_PRECISIONS) -> Dict[str, float]:
    """``roc_auc``, ``pr_auc`` and ``recall@P`` (e.g. ``recall@0.9``) of one score."""
    out = dict(roc_auc=roc_auc(scores, labels), pr_auc=average_precision(scores, labels))
    for p in precisions:
        out[f'recall@{float(p):g}'] = recall_at_precision(scores, labels, p)
    return out


def lpc_score_summary(s_g: Sequence[float], s_c: Sequence[float], labels: Sequence[int],
                      precisions: Sequence[float] = DEFAULT_PRECISIONS
                      ) -> Dict[str, Dict[str, float]]:
    """:func:`binary_summary` of ``s_g``, ``s_c`` and ``s_gc = s_g * s_c`` (paper Eq. 2).

    Returns:
        ``{'s_g': {...}, 's_c': {...}, 's_gc': {...}}``.
    """
    g = np.asarray(s_g, dtype=np.float64).ravel()
    c = np.asarray(s_c, dtype=np.float64).ravel()
    if g.shape != c.shape:
        raise ValueError(f's_g and s_c must have the same length, got {g.size} and {c.size}')
    return {name: binary_summary(score, labels, precisions)
            for name, score in zip(LPC_SCORES, (g, c, g * c))}
