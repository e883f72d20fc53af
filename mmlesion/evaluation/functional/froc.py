"""FROC / AP core shared by the P3D, 2D RECIST and 3D IoU metrics (plain numpy).

Counting rules (those of the DeepLesion reference evaluators: 3DCE and MULAN ``FROC``, Lesion
Harvester ``evaluation.py``):

* Detections of all images/volumes are ranked by score, highest first.  **Tie rule (ours):**
  equal scores keep the order in which the caller flattened the detections -- the metric
  front-ends flatten volumes/images in sorted-key order and detections in their given order --
  so the result never depends on dict insertion order or on an unstable sort.  (The references
  use ``np.argsort(scores)[::-1]``, whose tie order is an implementation detail of numpy.)
* A detection *hits* every ground truth it overlaps at or above the threshold (no one-to-one
  assignment: one big box may hit two lesions).  A ground truth counts once, for the
  highest-ranked detection that hits it.
* FROC: a detection that hits nothing is a false positive.  A detection that hits only
  already-hit ground truths is neither TP nor FP (3DCE, MULAN and Lesion Harvester all do this;
  ``froc_duplicates='fp'`` counts it as FP instead).
* AP (VOC all-point area under the precision envelope): with ``ap_duplicates='per_gt'`` (Lesion
  Harvester ``evaluation.py``) every already-hit ground truth that a detection overlaps adds one
  false positive -- also when the same detection hits a new ground truth; with
  ``ap_duplicates='per_det'`` (PASCAL VOC style) a detection that hits no new ground truth is one
  false positive.  Recall is hit ground truths / all ground truths.
* FP denominator: the number of images/volumes in the annotation set, including those without
  any detection.

Interpolation of sensitivity at given FP rates (:func:`interp_sensitivity`):

* ``'extrapolate'`` (default, 3DCE / Lesion Harvester: ``scipy.interpolate.interp1d(fps, sens,
  fill_value='extrapolate')``).  Inside the curve this is exactly scipy's rule: for
  ``fps[0] < t <= fps[-1]`` interpolate linearly between the last point with ``fps < t`` and the
  first point with ``fps >= t``.  scipy degenerates (inf/nan) when the outermost two points share
  an FP value; we then extend the line through the outermost two *distinct* FP levels (right
  end: the last point of the previous level and the last point; left end: the first points of the
  first two levels), and a curve with a single FP level is flat.  Results are clipped to [0, 1].
  Where scipy is finite the two agree (a test checks this against scipy).
* ``'clamp'`` (MULAN): the same inside; beyond the last point the final sensitivity, before the
  first point the first sensitivity.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

P3D_FP_POINTS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
RECIST_FP_POINTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

INTERP_MODES = ('extrapolate', 'clamp')
AP_DUPLICATE_MODES = ('per_gt', 'per_det')
FROC_DUPLICATE_MODES = ('ignore', 'fp')


def interp_sensitivity(fps, sens, fp_points, mode: str = 'extrapolate') -> np.ndarray:
    """Sensitivity of a FROC curve at given average-FP rates.

    Args:
        fps: ``(n,)`` non-decreasing average FPs per image/volume after each ranked detection.
        sens: ``(n,)`` sensitivity after each ranked detection.
        fp_points: ``(m,)`` FP rates to read the curve at.
        mode: ``'extrapolate'`` (default) or ``'clamp'``; see the module docstring.

    Returns:
        ``(m,)`` float64 sensitivities in [0, 1].  An empty curve (no detections) gives zeros.
    """
    if mode not in INTERP_MODES:
        raise ValueError(f'interpolation mode must be one of {INTERP_MODES}, got {mode!r}')
    x = np.asarray(fps, dtype=np.float64).ravel()
    y = np.asarray(sens, dtype=np.float64).ravel()
    t = np.asarray(fp_points, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f'fps and sens must have the same length, got {x.shape} and {y.shape}')
    n = x.size
    if n == 0:
        return np.zeros_like(t)
    if np.any(np.diff(x) < 0):
        raise ValueError('fps must be non-decreasing (a FROC curve in ranking order)')

    out = np.empty_like(t)
    idx = np.searchsorted(x, t, side='left')
    inner = (idx >= 1) & (idx <= n - 1)
    left = idx == 0
    right = idx == n

    if inner.any():
        hi = idx[inner]
        lo = hi - 1  # x[lo] < t <= x[hi], so x[hi] > x[lo]: never degenerate
        w = (t[inner] - x[lo]) / (x[hi] - x[lo])
        out[inner] = y[lo] + w * (y[hi] - y[lo])

    if mode == 'clamp':
        out[left] = y[0]
        out[right] = y[-1]
    else:
        if left.any():
            j = int(np.searchsorted(x, x[0], side='right'))  # first point of the 2nd level
            if j >= n:
                out[left] = y[0]
            else:
                slope = (y[j] - y[0]) / (x[j] - x[0])
                out[left] = y[0] + slope * (t[left] - x[0])
        if right.any():
            k = int(np.searchsorted(x, x[-1], side='left')) - 1  # last point of the previous level
            if k < 0:
                out[right] = y[-1]
            else:
                slope = (y[-1] - y[k]) / (x[-1] - x[k])
                out[right] = y[-1] + slope * (t[right] - x[-1])
        out = np.clip(out, 0.0, 1.0)
    return out


def voc_ap(recall, precision) -> float:
    """VOC all-point average precision: area under the monotone precision envelope.

    Args:
        recall: ``(n,)`` recall after each ranked detection (non-decreasing).
        precision: ``(n,)`` precision after each ranked detection.
    """
    rec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64).ravel(), [1.0]))
    prec = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64).ravel(), [0.0]))
    envelope = np.maximum.accumulate(prec[::-1])[::-1]
    step = np.flatnonzero(rec[1:] != rec[:-1])
    return float(np.sum((rec[step + 1] - rec[step]) * envelope[step + 1]))


@dataclass
class FROCResult:
    """Result of a FROC/AP evaluation.

    Per-rank arrays (``scores``, ``curve_*``, ``recall``, ``precision``) follow the ranking order;
    ``order[r]`` is the index of the rank-``r`` detection in the caller's flattened list.
    ``det_hit`` is in the flattened input order.  ``gt_first_hit_rank[g]`` is the rank of the
    detection that first hit ground truth ``g`` (-1: missed), in the flattened GT order.
    """
    ap: float
    fp_points: np.ndarray  # (m,) FPs per image/volume
    sensitivity: np.ndarray  # (m,)
    n_gt: int
    n_images: int
    n_dets: int
    scores: np.ndarray  # (n,) ranked scores, descending
    order: np.ndarray  # (n,) flattened detection index of each rank
    curve_fps: np.ndarray  # (n,) FROC average FPs per image after each rank
    curve_sens: np.ndarray  # (n,) sensitivity after each rank
    recall: np.ndarray  # (n,) AP recall after each rank (== curve_sens)
    precision: np.ndarray  # (n,) AP precision after each rank
    det_hit: np.ndarray  # (n,) bool, flattened detection order: hits >= 1 ground truth
    gt_first_hit_rank: np.ndarray  # (n_gt,) int64
    interp: str = 'extrapolate'
    # Filled by the metric front-ends (P3D, RECIST 2D, 3D IoU) to map indices back to keys.
    image_keys: List[str] = field(default_factory=list)  # the annotation set, sorted
    det_image: Optional[np.ndarray] = None  # (n,) index into image_keys
    det_index: Optional[np.ndarray] = None  # (n,) position in that image's detection list
    gt_image: Optional[np.ndarray] = None  # (n_gt,) index into image_keys
    gt_index: Optional[np.ndarray] = None  # (n_gt,) position in that image's GT list
    n_ignored_dets: int = 0  # detections on keys outside the annotation set (not counted)
    ignored_keys: List[str] = field(default_factory=list)

    @property
    def gt_hit(self) -> np.ndarray:
        """``(n_gt,)`` bool: ground truths hit by any detection."""
        return self.gt_first_hit_rank >= 0

    def hits_by_image(self) -> Dict[str, np.ndarray]:
        """``{key: (k,) bool}``: per image/volume, which of its detections hit a ground truth
        (in the order the caller gave them).  Keys without detections map to empty arrays."""
        if self.det_image is None or self.det_index is None:
            raise ValueError('this result carries no per-image detection mapping')
        order = np.lexsort((self.det_index, self.det_image))
        counts = np.bincount(self.det_image, minlength=len(self.image_keys))
        parts = np.split(self.det_hit[order], np.cumsum(counts)[:-1])
        return {key: part.copy() for key, part in zip(self.image_keys, parts)}

    def summary(self) -> Dict[str, float]:
        """Flat ``{'AP': .., 'sens@0.125': .., ...}`` dict of Python floats (for logs/JSON)."""
        out = {'AP': float(self.ap)}
        for t, s in zip(self.fp_points, self.sensitivity):
            out[f'sens@{float(t):g}'] = float(s)
        return out


def froc_from_hits(scores, det_hit_pairs, n_gt: int, n_images: int,
                   fp_points: Sequence[float] = P3D_FP_POINTS, *, interp: str = 'extrapolate',
                   ap_duplicates: str = 'per_gt', froc_duplicates: str = 'ignore') -> FROCResult:
    """FROC curve and AP from detection scores and precomputed hit pairs.

    Args:
        scores: ``(n,)`` detection scores in the caller's flattened order (ties keep this order).
        det_hit_pairs: ``(det_idx, gt_idx)``, two ``(P,)`` int arrays listing every detection/
            ground-truth pair whose overlap reaches the threshold; each pair at most once.
        n_gt: number of ground truths (indices ``0..n_gt-1``).
        n_images: FP denominator (images or volumes in the annotation set).
        fp_points: FP rates at which sensitivity is reported.
        interp: ``'extrapolate'`` or ``'clamp'``.
        ap_duplicates: ``'per_gt'`` or ``'per_det'``; see the module docstring.
        froc_duplicates: ``'ignore'`` (reference) or ``'fp'``.
    """
    if ap_duplicates not in AP_DUPLICATE_MODES:
        raise ValueError(
            f'ap_duplicates must be one of {AP_DUPLICATE_MODES}, got {ap_duplicates!r}')
    if froc_duplicates not in FROC_DUPLICATE_MODES:
        raise ValueError(
            f'froc_duplicates must be one of {FROC_DUPLICATE_MODES}, got {froc_duplicates!r}')
    if interp not in INTERP_MODES:
        raise ValueError(f'interp must be one of {INTERP_MODES}, got {interp!r}')
    if n_images <= 0:
        raise ValueError(f'FP denominator must be positive, got n_images={n_images}')
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f'detection {bad} has a non-finite score {scores[bad]!r}')
    n = scores.size
    pair_det = np.asarray(det_hit_pairs[0], dtype=np.int64).ravel()
    pair_gt = np.asarray(det_hit_pairs[1], dtype=np.int64).ravel()
    fp_points = np.asarray(fp_points, dtype=np.float64)

    order = np.argsort(-scores, kind='stable')
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    pair_rank = rank[pair_det]

    gt_first = np.full(n_gt, n, dtype=np.int64)
    if pair_rank.size:
        np.minimum.at(gt_first, pair_gt, pair_rank)
    hit_gt = gt_first < n
    new_hits = np.bincount(gt_first[hit_gt], minlength=n)[:n]
    pairs_per_rank = np.bincount(pair_rank, minlength=n)[:n]
    has_hit = pairs_per_rank > 0
    dup_only = has_hit & (new_hits == 0)

    froc_fp = ~has_hit
    if froc_duplicates == 'fp':
        froc_fp = froc_fp | dup_only
    if ap_duplicates == 'per_gt':
        ap_fp = (~has_hit).astype(np.int64) + (pairs_per_rank - new_hits)
    else:
        ap_fp = (~has_hit | dup_only).astype(np.int64)

    tps = np.cumsum(new_hits)
    curve_fps = np.cumsum(froc_fp) / float(n_images)
    if n_gt > 0:
        curve_sens = tps / float(n_gt)
        sensitivity = interp_sensitivity(curve_fps, curve_sens, fp_points, interp)
    else:
        curve_sens = np.full(n, np.nan)
        sensitivity = np.full(fp_points.shape, np.nan)
    fps_ap = np.cumsum(ap_fp)
    precision = tps / np.maximum(tps + fps_ap, np.finfo(np.float64).eps)
    ap = voc_ap(curve_sens, precision) if n_gt > 0 else float('nan')

    return FROCResult(
        ap=ap, fp_points=fp_points, sensitivity=sensitivity, n_gt=int(n_gt),
        n_images=int(n_images), n_dets=int(n), scores=scores[order], order=order,
        curve_fps=curve_fps, curve_sens=curve_sens, recall=curve_sens, precision=precision,
        det_hit=has_hit[rank], gt_first_hit_rank=np.where(hit_gt, gt_first, -1),
        interp=interp)
