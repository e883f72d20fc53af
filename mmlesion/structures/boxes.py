"""Overlap measures between axis-aligned 2D and 3D boxes (plain numpy): the one IoU of mmlesion.

``plus_one`` chooses the pixel convention (:mod:`mmlesion.structures.conventions`):
``True`` -- the inclusive-pixel ``+1`` of the DeepLesion reference evaluators (width
``x2 - x1 + 1``); ``False`` -- continuous corners (mmdet, our JSON, the stacker).  Both
operands must be in the same frame; the frame itself (0- or 1-based) does not change the IoU.

Shapes: 2D boxes are ``(N, >=4)`` arrays ``[x1, y1, x2, y2, ...]`` (extra columns such as a score
are ignored); 3D boxes are ``(N, >=6)`` arrays ``[x1, y1, z1, x2, y2, z2, ...]``.  All functions
return float64.  Unions are floored at ``1e-6`` (as the reference evaluator does), so degenerate
boxes give an overlap of 0 instead of a division by zero.
"""
import numpy as np

__all__ = ['box_area_2d', 'box_iou_2d', 'box_iou_2d_pairs', 'box_iobb_2d', 'box_iobb_2d_pairs',
           'box_iou_3d', 'box_iou_3d_pairs', 'match_pairs_by_key', 'OVERLAP_EPS']

# the smallest union (or box area) divided by: degenerate boxes give 0, not a division by 0
OVERLAP_EPS = 1e-6


def _as_boxes(boxes, min_cols: int, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, min_cols)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise ValueError(f'{name}: expected an (N, >={min_cols}) box array, got shape {arr.shape}')
    return arr


def _extent(lo: np.ndarray, hi: np.ndarray, plus_one: bool) -> np.ndarray:
    return hi - lo + 1.0 if plus_one else hi - lo


def _intersection_2d(a: np.ndarray, b: np.ndarray, plus_one: bool) -> np.ndarray:
    iw = np.maximum(_extent(np.maximum(a[..., 0], b[..., 0]), np.minimum(a[..., 2], b[..., 2]),
                            plus_one), 0.0)
    ih = np.maximum(_extent(np.maximum(a[..., 1], b[..., 1]), np.minimum(a[..., 3], b[..., 3]),
                            plus_one), 0.0)
    return iw * ih


def box_area_2d(boxes, plus_one: bool = True) -> np.ndarray:
    """Area of ``(N, >=4)`` boxes in px^2 (negative extents count as 0)."""
    b = _as_boxes(boxes, 4, 'boxes')
    return (np.maximum(_extent(b[:, 0], b[:, 2], plus_one), 0.0) *
            np.maximum(_extent(b[:, 1], b[:, 3], plus_one), 0.0))


def box_iou_2d(boxes_a, boxes_b, plus_one: bool = True) -> np.ndarray:
    """IoU matrix between ``(N, >=4)`` and ``(M, >=4)`` boxes -> ``(N, M)``."""
    a = _as_boxes(boxes_a, 4, 'boxes_a')[:, None, :4]
    b = _as_boxes(boxes_b, 4, 'boxes_b')[None, :, :4]
    return _iou_2d(a, b, plus_one)


def box_iou_2d_pairs(boxes_a, boxes_b, plus_one: bool = True) -> np.ndarray:
    """Element-wise IoU of two ``(K, >=4)`` box arrays -> ``(K,)``."""
    a = _as_boxes(boxes_a, 4, 'boxes_a')[:, :4]
    b = _as_boxes(boxes_b, 4, 'boxes_b')[:, :4]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'pairwise IoU needs equal lengths, got {a.shape[0]} and {b.shape[0]}')
    return _iou_2d(a, b, plus_one)


def _iou_2d(a: np.ndarray, b: np.ndarray, plus_one: bool) -> np.ndarray:
    inter = _intersection_2d(a, b, plus_one)
    area_a = _extent(a[..., 0], a[..., 2], plus_one) * _extent(a[..., 1], a[..., 3], plus_one)
    area_b = _extent(b[..., 0], b[..., 2], plus_one) * _extent(b[..., 1], b[..., 3], plus_one)
    return inter / np.maximum(area_a + area_b - inter, OVERLAP_EPS)


def box_iobb_2d(det_boxes, gt_boxes, plus_one: bool = True) -> np.ndarray:
    """Intersection over the *detected* box: ``(N, >=4)`` dets x ``(M, >=4)`` GT -> ``(N, M)``.

    The IoBB criterion of the DeepLesion 2D evaluation: a detection that lies inside a (larger)
    ground-truth box scores 1 however small it is.
    """
    a = _as_boxes(det_boxes, 4, 'det_boxes')[:, None, :4]
    b = _as_boxes(gt_boxes, 4, 'gt_boxes')[None, :, :4]
    return _iobb_2d(a, b, plus_one)


def box_iobb_2d_pairs(det_boxes, gt_boxes, plus_one: bool = True) -> np.ndarray:
    """Element-wise intersection over the detected box of two ``(K, >=4)`` arrays -> ``(K,)``."""
    a = _as_boxes(det_boxes, 4, 'det_boxes')[:, :4]
    b = _as_boxes(gt_boxes, 4, 'gt_boxes')[:, :4]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'pairwise IoBB needs equal lengths, got {a.shape[0]} and {b.shape[0]}')
    return _iobb_2d(a, b, plus_one)


def _iobb_2d(a: np.ndarray, b: np.ndarray, plus_one: bool) -> np.ndarray:
    inter = _intersection_2d(a, b, plus_one)
    area_a = _extent(a[..., 0], a[..., 2], plus_one) * _extent(a[..., 1], a[..., 3], plus_one)
    return inter / np.maximum(area_a, OVERLAP_EPS)


def _iou_3d(a: np.ndarray, b: np.ndarray, plus_one: bool) -> np.ndarray:
    inter = np.ones(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]))
    vol_a = np.ones(a.shape[:-1])
    vol_b = np.ones(b.shape[:-1])
    for lo, hi in ((0, 3), (1, 4), (2, 5)):
        inter = inter * np.maximum(
            _extent(np.maximum(a[..., lo], b[..., lo]), np.minimum(a[..., hi], b[..., hi]),
                    plus_one), 0.0)
        vol_a = vol_a * _extent(a[..., lo], a[..., hi], plus_one)
        vol_b = vol_b * _extent(b[..., lo], b[..., hi], plus_one)
    return inter / np.maximum(vol_a + vol_b - inter, OVERLAP_EPS)


def box_iou_3d(boxes_a, boxes_b, plus_one: bool = False) -> np.ndarray:
    """3D IoU matrix between ``(N, >=6)`` and ``(M, >=6)`` boxes ``[x1, y1, z1, x2, y2, z2]``.

    Default ``plus_one=False``: extents are continuous on every axis (``x2 - x1``; along z a
    tracklet covering slices ``a..b`` is ``[a - 0.5, b + 0.5]``, the convention of the half-integer
    z values in Lesion Harvester's ``3D-Box.pkl``).  ``plus_one=True`` treats all three axes as
    inclusive integer indices.  Returns ``(N, M)``.
    """
    a = _as_boxes(boxes_a, 6, 'boxes_a')[:, None, :6]
    b = _as_boxes(boxes_b, 6, 'boxes_b')[None, :, :6]
    return _iou_3d(a, b, plus_one)


def box_iou_3d_pairs(boxes_a, boxes_b, plus_one: bool = False) -> np.ndarray:
    """Element-wise 3D IoU of two ``(K, >=6)`` arrays -> ``(K,)``; see :func:`box_iou_3d`."""
    a = _as_boxes(boxes_a, 6, 'boxes_a')[:, :6]
    b = _as_boxes(boxes_b, 6, 'boxes_b')[:, :6]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'pairwise 3D IoU needs equal lengths, got {a.shape[0]} and {b.shape[0]}')
    return _iou_3d(a, b, plus_one)


def match_pairs_by_key(det_keys, gt_keys):
    """All (detection, ground truth) index pairs that share an integer key, vectorised.

    Used to restrict overlap computations to boxes on the same image / volume / slice without a
    Python loop: a sort + ``searchsorted`` join.

    Args:
        det_keys: ``(N,)`` int64 keys of the detections.
        gt_keys: ``(M,)`` int64 keys of the ground-truth boxes.

    Returns:
        ``(det_idx, gt_idx)``: two ``(P,)`` int64 arrays; every pair with
        ``det_keys[det_idx] == gt_keys[gt_idx]``, ordered by detection index then GT index.
    """
    det_keys = np.asarray(det_keys, dtype=np.int64).ravel()
    gt_keys = np.asarray(gt_keys, dtype=np.int64).ravel()
    gt_order = np.argsort(gt_keys, kind='stable')
    sorted_gt = gt_keys[gt_order]
    lo = np.searchsorted(sorted_gt, det_keys, side='left')
    hi = np.searchsorted(sorted_gt, det_keys, side='right')
    counts = hi - lo
    total = int(counts.sum())
    det_idx = np.repeat(np.arange(det_keys.size, dtype=np.int64), counts)
    # position of each pair inside its detection's run of matching GTs
    starts = np.cumsum(counts) - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    gt_idx = gt_order[np.repeat(lo, counts) + within]
    return det_idx, gt_idx.astype(np.int64)
