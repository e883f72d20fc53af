"""3D IoU FROC: 3D proposals against 3D ground-truth boxes (e.g. Lesion Harvester ``3D-Box.pkl``).

A detection ``[x1, y1, z1, x2, y2, z2, score]`` hits a ground-truth box ``[x1, y1, z1, x2, y2, z2]``
of the same volume when their 3D IoU is >= 0.33 (the paper's threshold; configurable).
Sensitivity is read at the P3D FP rates per volume; AP, duplicate handling, ranking and
interpolation as in :mod:`mmlesion.evaluation.functional.froc`.

Conventions: by default extents are continuous on every axis (``plus_one=False``).  Along z a
tracklet covering slices ``a..b`` is the interval ``[a - 0.5, b + 0.5]`` (the convention behind
the half-integer z values of ``3D-Box.pkl``); :func:`tracklet_boxes3d` builds such boxes.  Both
sides must be in the same frame (mmlesion: absolute z, 0-based x/y).
"""
from typing import Any, Mapping, Sequence

import numpy as np

from mmlesion.structures.boxes import box_iou_3d_pairs, match_pairs_by_key
from mmlesion.structures.tracklet import pack_tracklets
from mmlesion.structures.volume_key import normalize_key

from .froc import P3D_FP_POINTS, FROCResult, froc_from_hits

__all__ = ['evaluate_iou_3d', 'tracklet_boxes3d', 'clip_boxes3d_z']

Z_CONVENTIONS = ('continuous', 'inclusive')


def tracklet_boxes3d(detections: Mapping[Any, Sequence[Any]],
                     z_convention: str = 'continuous') -> dict:
    """Enclosing 3D box and score of every tracklet.

    Args:
        detections: ``{volume_key: [tracklet, ...]}`` in any layout accepted by
            :func:`mmlesion.evaluation.functional.p3d.pack_tracklets`.
        z_convention: ``'continuous'`` -> ``z1 = z_min - 0.5``, ``z2 = z_max + 0.5`` (use with
            ``plus_one=False``); ``'inclusive'`` -> ``z1 = z_min``, ``z2 = z_max`` (use with
            ``plus_one=True``).

    Returns:
        ``{volume_key: (n, 7) [x1, y1, z1, x2, y2, z2, score]}``, score = max slice score, in the
        tracklets' frame; keys without ``.annot``.
    """
    if z_convention not in Z_CONVENTIONS:
        raise ValueError(f'z_convention must be one of {Z_CONVENTIONS}, got {z_convention!r}')
    keys = sorted({normalize_key(k) for k in detections})
    packed = pack_tracklets(detections, keys)
    out = {k: np.zeros((0, 7)) for k in keys}
    if packed.scores.size == 0:
        return out
    s = packed.trk_start
    half = 0.5 if z_convention == 'continuous' else 0.0
    z = packed.z.astype(np.float64)
    boxes3d = np.stack([
        np.minimum.reduceat(packed.boxes[:, 0], s),
        np.minimum.reduceat(packed.boxes[:, 1], s),
        np.minimum.reduceat(z, s) - half,
        np.maximum.reduceat(packed.boxes[:, 2], s),
        np.maximum.reduceat(packed.boxes[:, 3], s),
        np.maximum.reduceat(z, s) + half,
        packed.scores,
    ], axis=1)
    # packed tracklets are grouped by volume in ``keys`` order
    counts = np.bincount(packed.trk_volume, minlength=len(keys))
    for key, part in zip(keys, np.split(boxes3d, np.cumsum(counts)[:-1])):
        out[key] = part
    return out


def clip_boxes3d_z(boxes: np.ndarray, z_first: float, z_last: float,
                   z_convention: str = 'continuous') -> np.ndarray:
    """Clamp the z extent of ``(n, >=6)`` boxes to a sub-volume's slices ``z_first..z_last``.

    ``3D-Box.pkl`` has boxes starting at -0.5 and a few ending 0.5 past the last slice; with the
    continuous convention the valid range is ``[z_first - 0.5, z_last + 0.5]``.
    """
    boxes = np.array(boxes, dtype=np.float64, copy=True)
    half = 0.5 if z_convention == 'continuous' else 0.0
    boxes[:, 2] = np.clip(boxes[:, 2], z_first - half, z_last + half)
    boxes[:, 5] = np.clip(boxes[:, 5], z_first - half, z_last + half)
    return boxes


def _rows(value: Any, n_cols: int, what: str) -> np.ndarray:
    arr = np.asarray(value if value is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, n_cols))
    if arr.ndim != 2 or arr.shape[1] < n_cols:
        raise ValueError(f'{what}: expected an (n, {n_cols}) array, got shape {arr.shape}')
    if not np.all(np.isfinite(arr[:, :n_cols])):
        raise ValueError(f'{what}: non-finite values')
    return arr[:, :n_cols]


def evaluate_iou_3d(gt: Mapping[Any, Any], detections: Mapping[Any, Any], *,
                    iou_thr: float = 0.33, fp_points: Sequence[float] = P3D_FP_POINTS,
                    interp: str = 'extrapolate', ap_duplicates: str = 'per_gt',
                    froc_duplicates: str = 'ignore', plus_one: bool = False) -> FROCResult:
    """FROC and AP of 3D boxes by 3D IoU.

    Args:
        gt: ``{volume_key: (n, >=6) [x1, y1, z1, x2, y2, z2]}``; its keys are the annotation set
            (FP denominator), ``.annot`` stripped.
        detections: ``{volume_key: (m, 7) [x1, y1, z1, x2, y2, z2, score]}`` (tracklets: convert
            with :func:`tracklet_boxes3d`).  Volumes outside ``gt`` are ignored and counted.
        iou_thr: 3D IoU threshold (0.33 in the paper).
        plus_one: inclusive extents on all axes; default continuous.
    """
    gt = {normalize_key(k): v for k, v in gt.items()}
    detections = {normalize_key(k): v for k, v in detections.items()}
    keys = sorted(gt)
    if not keys:
        raise ValueError('the ground-truth set is empty (the FP denominator is its size)')
    ignored = sorted(k for k in detections if k not in gt)
    n_ignored = sum(len(_rows(detections[k], 7, f'detections of {k!r}')) for k in ignored)

    gt_img, gt_idx, gt_boxes, det_img, det_idx, det_boxes = [], [], [], [], [], []
    for i, key in enumerate(keys):
        g = _rows(gt[key], 6, f'ground truth of {key!r}')
        d = _rows(detections.get(key), 7, f'detections of {key!r}')
        gt_img.append(np.full(len(g), i, dtype=np.int64))
        gt_idx.append(np.arange(len(g), dtype=np.int64))
        gt_boxes.append(g)
        det_img.append(np.full(len(d), i, dtype=np.int64))
        det_idx.append(np.arange(len(d), dtype=np.int64))
        det_boxes.append(d)
    gt_img, gt_idx = np.concatenate(gt_img), np.concatenate(gt_idx)
    gt_boxes = np.concatenate(gt_boxes)
    det_img, det_idx = np.concatenate(det_img), np.concatenate(det_idx)
    det_boxes = np.concatenate(det_boxes)

    di, gi = match_pairs_by_key(det_img, gt_img)
    hit = box_iou_3d_pairs(det_boxes[di, :6], gt_boxes[gi], plus_one=plus_one) >= iou_thr
    result = froc_from_hits(det_boxes[:, 6], (di[hit], gi[hit]), len(gt_boxes), len(keys),
                            fp_points, interp=interp, ap_duplicates=ap_duplicates,
                            froc_duplicates=froc_duplicates)
    result.image_keys = keys
    result.det_image, result.det_index = det_img, det_idx
    result.gt_image, result.gt_index = gt_img, gt_idx
    result.n_ignored_dets = int(n_ignored)
    result.ignored_keys = ignored
    return result
