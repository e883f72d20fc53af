"""P3D: the Lesion Harvester 3D detection metric (Cai et al., TMI 2020), vectorised numpy.

Semantics follow the released ``evaluation.py`` of Lesion Harvester:

* Ground truth: per sub-volume, the 2D boxes ``(z, [x1, y1, x2, y2])`` of a *completely*
  annotated set (e.g. ``Revised-Test1071.pkl``).
* A prediction is a tracklet: a list of ``(z, [x1, y1, x2, y2, score])``; its score is the
  maximum slice score.
* A tracklet hits a ground truth iff it has a box on the ground truth's slice ``z`` and that
  box's 2D IoU with the ground truth is >= ``iou_thr`` (0.5), computed with the ``+1``
  inclusive-pixel convention.  If a tracklet holds several boxes on one slice, only the first
  is used (as the reference's ``zs.index(z)`` does).
* FROC counting, AP counting, tie rule and interpolation: see
  :mod:`mmlesion.evaluation.functional.froc` (FROC at [0.125, ..., 16] FPs per volume; the FP
  denominator is the number of volumes of the annotation set, volumes without tracklets
  included; AP = VOC all-point area with Lesion Harvester's ``per_gt`` duplicate counting).

Frames (:mod:`mmlesion.structures.conventions`): ground truth and tracklets must be in the
**same** frame, both ``'lh'`` or both ``'mmlesion'``; the ``+1`` IoU does not depend on which, z
must match exactly.  Tracklets in any layout of :mod:`mmlesion.structures.tracklet`.

Keys: a trailing ``.annot`` (``Revised-*.pkl``) is stripped from ground-truth and detection keys.
Tracklets on volumes outside the annotation set are ignored (the reference crashes on them);
their number and keys are reported in ``FROCResult.n_ignored_dets`` / ``ignored_keys``.
"""
from typing import Any, List, Mapping, NamedTuple, Sequence

import numpy as np

from mmlesion.structures.boxes import box_iou_2d_pairs, match_pairs_by_key
from mmlesion.structures.conventions import EVAL_PLUS_ONE
from mmlesion.structures.tracklet import PackedTracklets, integral_slice_indices, pack_tracklets
from mmlesion.structures.volume_key import normalize_key

from .froc import P3D_FP_POINTS, FROCResult, froc_from_hits

__all__ = ['evaluate_p3d', 'p3d_overlaps', 'pack_gt_2d', 'PackedGT2D']


class PackedGT2D(NamedTuple):
    keys: List[str]
    volume: np.ndarray  # (G,) int64 index into keys
    index: np.ndarray  # (G,) int64 position in the volume's GT list
    z: np.ndarray  # (G,) int64
    boxes: np.ndarray  # (G, 4) float64 [x1, y1, x2, y2]


def _gt_rows(value: Any, key: str):
    """One volume's ground truth -> (z (n,), boxes (n, 4))."""
    if isinstance(value, Mapping):  # LH annotation layout {z: [[x1, y1, x2, y2, z, z], ...]}
        zs, rows = [], []
        for z in sorted(value):
            for row in value[z]:
                zs.append(z)
                rows.append(np.asarray(row, dtype=np.float64).ravel()[:4])
    elif isinstance(value, np.ndarray):
        arr = np.asarray(value, dtype=np.float64)
        if arr.size == 0:
            return np.zeros(0), np.zeros((0, 4))
        if arr.ndim != 2 or arr.shape[1] < 5:
            raise ValueError(f'ground truth of {key!r}: expected an (n, 5) array '
                             f'[z, x1, y1, x2, y2], got shape {arr.shape}')
        return arr[:, 0], arr[:, 1:5]
    else:
        zs, rows = [], []
        for i, item in enumerate(value):
            try:
                z, box = item
            except (TypeError, ValueError):
                raise ValueError(f'ground truth of {key!r}, entry {i}: expected '
                                 f'(z, [x1, y1, x2, y2]), got {item!r}') from None
            zs.append(z)
            rows.append(np.asarray(box, dtype=np.float64).ravel()[:4])
    for i, r in enumerate(rows):
        if r.size != 4:
            raise ValueError(f'ground truth of {key!r}, entry {i}: a box needs 4 numbers, '
                             f'got {r!r}')
    if not rows:
        return np.zeros(0), np.zeros((0, 4))
    return np.asarray(zs, dtype=np.float64), np.stack(rows)


def pack_gt_2d(gt: Mapping[Any, Any]) -> PackedGT2D:
    """Flatten 2D ground truth ``{key: boxes}`` into arrays (keys sorted).

    A volume's boxes may be given as a sequence of ``(z, [x1, y1, x2, y2, ...])``, an ``(n, 5)``
    array ``[z, x1, y1, x2, y2]`` or the Lesion Harvester layout ``{z: [[x1, y1, x2, y2, ...]]}``.
    """
    by_key = {}
    for key, value in gt.items():
        nk = normalize_key(key)
        if nk in by_key:
            raise ValueError(f'ground truth lists volume {nk!r} twice')
        by_key[nk] = value
    keys = sorted(by_key)
    vols, idxs, zs, boxes = [], [], [], []
    for v, key in enumerate(keys):
        z, b = _gt_rows(by_key[key], key)
        vols.append(np.full(z.size, v, dtype=np.int64))
        idxs.append(np.arange(z.size, dtype=np.int64))
        zs.append(z)
        boxes.append(b)
    if not keys:
        return PackedGT2D([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros((0, 4)))
    boxes = np.concatenate(boxes)
    if not np.all(np.isfinite(boxes)):
        raise ValueError('ground truth contains non-finite box coordinates')
    return PackedGT2D(keys, np.concatenate(vols), np.concatenate(idxs),
                      integral_slice_indices(np.concatenate(zs), 'ground truth'), boxes)


def _first_box_per_slice(packed: PackedTracklets) -> np.ndarray:
    """Rows to use: the first box of each (tracklet, z) pair (reference ``zs.index(z)``)."""
    z, trk = packed.z, packed.box_trk
    if z.size < 2:
        return np.arange(z.size)
    same_trk = trk[1:] == trk[:-1]
    if np.all(np.diff(z)[same_trk] > 0):  # strictly increasing z inside every tracklet
        return np.arange(z.size)
    span = int(z.max() - z.min()) + 1
    key = trk * span + (z - z.min())
    _, first = np.unique(key, return_index=True)
    return np.sort(first)


def _hit_pairs(gt: PackedGT2D, packed: PackedTracklets, iou_thr: float, plus_one: bool):
    """(tracklet, gt) pairs whose P3D IoU reaches the threshold, plus the IoU of every pair."""
    rows = _first_box_per_slice(packed)
    if rows.size == 0 or gt.z.size == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0)
    box_vol = packed.trk_volume[packed.box_trk[rows]]
    zmin = min(int(packed.z.min()), int(gt.z.min()))
    span = max(int(packed.z.max()), int(gt.z.max())) - zmin + 1
    det_key = box_vol * span + (packed.z[rows] - zmin)
    gt_key = gt.volume * span + (gt.z - zmin)
    bi, gi = match_pairs_by_key(det_key, gt_key)
    iou = box_iou_2d_pairs(packed.boxes[rows[bi], :4], gt.boxes[gi], plus_one=plus_one)
    return packed.box_trk[rows[bi]], gi, iou


def evaluate_p3d(gt: Mapping[Any, Any], detections: Mapping[Any, Sequence[Any]], *,
                 iou_thr: float = 0.5, fp_points: Sequence[float] = P3D_FP_POINTS,
                 interp: str = 'extrapolate', ap_duplicates: str = 'per_gt',
                 froc_duplicates: str = 'ignore', plus_one: bool = EVAL_PLUS_ONE) -> FROCResult:
    """P3D FROC and AP of tracklets against a completely annotated 2D ground-truth set.

    Args:
        gt: ``{volume_key: boxes}``, see :func:`pack_gt_2d`.  Its keys define the annotation set
            and the FP denominator (volumes with no boxes count).
        detections: ``{volume_key: [tracklet, ...]}``, see :func:`pack_tracklets`.
        iou_thr: 2D IoU threshold on the ground truth's slice (0.5 in the paper).
        fp_points: FPs per volume at which sensitivity is reported.
        interp: ``'extrapolate'`` (default, 3DCE / Lesion Harvester) or ``'clamp'`` (MULAN).
        ap_duplicates: ``'per_gt'`` (reference) or ``'per_det'``.
        froc_duplicates: ``'ignore'`` (reference) or ``'fp'``.
        plus_one: inclusive-pixel IoU (reference: True).

    Returns:
        :class:`FROCResult`; ``image_keys`` are the sorted volume keys, detections are the
        tracklets (``det_image``/``det_index`` locate them), ``gt_image``/``gt_index`` locate the
        ground truths (per volume in ``(z, given order)`` for the LH dict layout, else as given).
    """
    gt_packed = pack_gt_2d(gt)
    if not gt_packed.keys:
        raise ValueError('P3D needs a non-empty annotation set (the FP denominator is its size)')
    known = set(gt_packed.keys)
    ignored = sorted({normalize_key(k) for k in detections} - known)
    n_ignored = sum(len(v) for k, v in detections.items() if normalize_key(k) not in known)
    packed = pack_tracklets(detections, gt_packed.keys)
    trk, gi, iou = _hit_pairs(gt_packed, packed, iou_thr, plus_one)
    hit = iou >= iou_thr
    result = froc_from_hits(packed.scores, (trk[hit], gi[hit]), gt_packed.z.size,
                            len(gt_packed.keys), fp_points, interp=interp,
                            ap_duplicates=ap_duplicates, froc_duplicates=froc_duplicates)
    result.image_keys = gt_packed.keys
    result.det_image = packed.trk_volume
    result.det_index = packed.trk_index
    result.gt_image = gt_packed.volume
    result.gt_index = gt_packed.index
    result.n_ignored_dets = int(n_ignored)
    result.ignored_keys = ignored
    return result


def p3d_overlaps(gt_boxes: Any, tracklets: Sequence[Any],
                 plus_one: bool = EVAL_PLUS_ONE) -> np.ndarray:
    """P3D IoU of each tracklet of one volume with each ground truth of that volume.

    Args:
        gt_boxes: one volume's ground truth (any layout accepted by :func:`pack_gt_2d`).
        tracklets: that volume's tracklets (any layout accepted by :func:`pack_tracklets`).

    Returns:
        ``(n_tracklets, n_gt)`` float64: the 2D IoU between the ground truth and the tracklet's
        box on the ground truth's slice, 0 where the tracklet has no box on that slice.
    """
    gt_packed = pack_gt_2d({'v': gt_boxes})
    packed = pack_tracklets({'v': tracklets}, ['v'])
    out = np.zeros((packed.scores.size, gt_packed.z.size))
    trk, gi, iou = _hit_pairs(gt_packed, packed, 0.0, plus_one)
    out[trk, gi] = iou
    return out
