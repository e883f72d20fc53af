"""Legacy DeepLesion 2D metric: FROC on key slices (3DCE / MULAN), vectorised numpy.

Per key slice (image): detections are 2D boxes with scores; a detection hits a ground truth
when their IoU (``+1`` inclusive-pixel convention) is >= 0.5, or with ``criterion='iobb'`` when
the intersection over the *detected* box is >= 0.5.  Sensitivity is read at
[0.5, 1, 2, 4, 8, 16] average FPs per image; the FP denominator is the number of images in the
ground-truth set (images without detections included).

Duplicates: as in 3DCE's and MULAN's ``FROC`` (checked against their released code), a detection
whose overlaps reach the threshold only on ground truths that are already hit is *neither* TP nor
FP -- it is not counted at all.  ``froc_duplicates='fp'`` counts it as FP instead (the stricter
reading "each GT counted once, every other detection is FP").  Each ground truth is counted once.
Ranking, ties and interpolation: :mod:`mmlesion.evaluation.functional.froc`.

Frames: detections and ground truth in the same pixel frame (0-based in mmlesion, 1-based in
DL_info.csv); both overlap measures are translation invariant.
"""
from typing import Any, List, Mapping

import numpy as np

from mmlesion.structures.boxes import box_iobb_2d_pairs, box_iou_2d_pairs, match_pairs_by_key

from .froc import RECIST_FP_POINTS, FROCResult, froc_from_hits

__all__ = ['evaluate_recist_2d', 'sorted_keys']

CRITERIA = ('iou', 'iobb')


def sorted_keys(keys) -> List[Any]:
    """Keys in a deterministic order: natural order, or by ``repr`` for mixed types."""
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)


def _rows(value: Any, n_cols: int, what: str) -> np.ndarray:
    arr = np.asarray(value if value is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, n_cols))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] < n_cols:
        raise ValueError(f'{what}: expected an (n, {n_cols}) array, got shape {arr.shape}')
    if not np.all(np.isfinite(arr[:, :n_cols])):
        raise ValueError(f'{what}: non-finite values')
    return arr[:, :n_cols]


def evaluate_recist_2d(gt: Mapping[Any, Any], detections: Mapping[Any, Any], *,
                       iou_thr: float = 0.5, criterion: str = 'iou',
                       fp_points=RECIST_FP_POINTS, interp: str = 'extrapolate',
                       froc_duplicates: str = 'ignore', ap_duplicates: str = 'per_gt',
                       plus_one: bool = True) -> FROCResult:
    """2D FROC (and AP) over key slices.

    Args:
        gt: ``{image_key: (n, >=4) boxes [x1, y1, x2, y2]}``; its keys are the evaluated images.
        detections: ``{image_key: (m, 5) [x1, y1, x2, y2, score]}``; images missing here have no
            detections; detections on images outside ``gt`` are ignored and counted.
        iou_thr: overlap threshold (0.5).
        criterion: ``'iou'`` or ``'iobb'`` (intersection over the detected box).
        fp_points: FPs per image (default [0.5, 1, 2, 4, 8, 16]).
        interp: ``'extrapolate'`` (3DCE) or ``'clamp'`` (MULAN).
        froc_duplicates: ``'ignore'`` (3DCE/MULAN) or ``'fp'``.
        ap_duplicates: ``'per_gt'`` or ``'per_det'`` (see ``froc``).
        plus_one: inclusive-pixel overlap (the reference convention).
    """
    if criterion not in CRITERIA:
        raise ValueError(f'criterion must be one of {CRITERIA}, got {criterion!r}')
    keys = sorted_keys(gt)
    if not keys:
        raise ValueError('the ground-truth set is empty (the FP denominator is its size)')
    known = set(keys)
    ignored = sorted_keys(k for k in detections if k not in known)
    n_ignored = sum(len(_rows(detections[k], 5, f'detections of {k!r}')) for k in ignored)

    gt_img, gt_idx, gt_boxes = [], [], []
    det_img, det_idx, det_boxes = [], [], []
    for i, key in enumerate(keys):
        g = _rows(gt[key], 4, f'ground truth of {key!r}')
        gt_img.append(np.full(len(g), i, dtype=np.int64))
        gt_idx.append(np.arange(len(g), dtype=np.int64))
        gt_boxes.append(g)
        d = _rows(detections.get(key), 5, f'detections of {key!r}')
        det_img.append(np.full(len(d), i, dtype=np.int64))
        det_idx.append(np.arange(len(d), dtype=np.int64))
        det_boxes.append(d)
    gt_img, gt_idx = np.concatenate(gt_img), np.concatenate(gt_idx)
    gt_boxes = np.concatenate(gt_boxes)
    det_img, det_idx = np.concatenate(det_img), np.concatenate(det_idx)
    det_boxes = np.concatenate(det_boxes)

    di, gi = match_pairs_by_key(det_img, gt_img)
    overlap_fn = box_iou_2d_pairs if criterion == 'iou' else box_iobb_2d_pairs
    ov = overlap_fn(det_boxes[di, :4], gt_boxes[gi], plus_one=plus_one)
    hit = ov >= iou_thr
    result = froc_from_hits(det_boxes[:, 4], (di[hit], gi[hit]), len(gt_boxes), len(keys),
                            fp_points, interp=interp, ap_duplicates=ap_duplicates,
                            froc_duplicates=froc_duplicates)
    result.image_keys = keys
    result.det_image, result.det_index = det_img, det_idx
    result.gt_image, result.gt_index = gt_img, gt_idx
    result.n_ignored_dets = int(n_ignored)
    result.ignored_keys = ignored
    return result
