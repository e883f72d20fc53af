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

Frames: ground truth and tracklets must be in the **same** frame -- either both as in the
Lesion Harvester files (relative z, 1-based x/y) or both in mmlesion's frame (absolute z, 0-based
x/y; see :mod:`mmlesion.evaluation.detection_io` for conversions).  The ``+1`` IoU is translation
invariant, so the frame does not change the numbers as long as both sides agree; z must match
exactly.

Keys: a trailing ``.annot`` (``Revised-*.pkl``) is stripped from ground-truth and detection keys.
Tracklets on volumes outside the annotation set are ignored (the reference crashes on them);
their number and keys are reported in ``FROCResult.n_ignored_dets`` / ``ignored_keys``.
"""
from itertools import chain
from operator import itemgetter
from typing import Any, List, Mapping, NamedTuple, Sequence

import numpy as np

from .box_ops import box_iou_2d_pairs, match_pairs_by_key
from .froc import P3D_FP_POINTS, FROCResult, froc_from_hits

__all__ = ['evaluate_p3d', 'p3d_overlaps', 'pack_tracklets', 'pack_gt_2d', 'PackedTracklets',
           'PackedGT2D', 'normalize_key']


def normalize_key(key: Any) -> str:
    """Volume key as a string without the ``.annot`` suffix of the ``Revised-*`` files."""
    key = str(key)
    return key[:-len('.annot')] if key.endswith('.annot') else key


class PackedTracklets(NamedTuple):
    """All tracklets of a set of volumes as flat arrays.

    Tracklets are ordered by volume (``keys`` order), then by their position in the volume's list.
    """
    keys: List[str]
    trk_volume: np.ndarray  # (T,) int64 index into keys
    trk_index: np.ndarray  # (T,) int64 position in the volume's tracklet list
    trk_start: np.ndarray  # (T,) int64 first row of the tracklet in z/boxes
    trk_len: np.ndarray  # (T,) int64 number of boxes (>= 1)
    scores: np.ndarray  # (T,) float64 max slice score
    z: np.ndarray  # (B,) int64 slice index of each box
    boxes: np.ndarray  # (B, 5) float64 [x1, y1, x2, y2, score]
    box_trk: np.ndarray  # (B,) int64 tracklet of each box


class PackedGT2D(NamedTuple):
    keys: List[str]
    volume: np.ndarray  # (G,) int64 index into keys
    index: np.ndarray  # (G,) int64 position in the volume's GT list
    z: np.ndarray  # (G,) int64
    boxes: np.ndarray  # (G, 4) float64 [x1, y1, x2, y2]


def _integral_z(z: np.ndarray, what: str) -> np.ndarray:
    if z.size and not np.all(np.isfinite(z)):
        raise ValueError(f'{what}: non-finite slice index')
    zi = np.rint(z)
    if z.size and np.any(np.abs(z - zi) > 1e-6):
        bad = int(np.flatnonzero(np.abs(z - zi) > 1e-6)[0])
        raise ValueError(f'{what}: slice index {z[bad]!r} is not an integer')
    return zi.astype(np.int64)


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
                      _integral_z(np.concatenate(zs), 'ground truth'), boxes)


def _array_tracklet(trk: Any, key: str, t: int):
    """A tracklet given as arrays -> (z (n,), boxes (n, 5)) float64."""
    if hasattr(trk, 'boxes') and hasattr(trk, 'z'):  # mmlesion.stacking.Tracklet
        z = np.asarray(trk.z, dtype=np.float64).ravel()
        boxes = np.asarray(trk.boxes, dtype=np.float64)
    elif isinstance(trk, np.ndarray):
        if trk.ndim != 2 or trk.shape[1] != 6:
            raise ValueError(f'detections of {key!r}, tracklet {t}: expected an (n, 6) array '
                             f'[z, x1, y1, x2, y2, score], got shape {trk.shape}')
        z, boxes = trk[:, 0].astype(np.float64), trk[:, 1:].astype(np.float64)
    else:
        raise ValueError(f'detections of {key!r}, tracklet {t}: expected a list of '
                         f'(z, [x1, y1, x2, y2, score]) pairs, an (n, 6) array or a Tracklet, '
                         f'got {type(trk).__name__}')
    if boxes.ndim != 2 or boxes.shape[1] != 5 or boxes.shape[0] != z.size:
        raise ValueError(f'detections of {key!r}, tracklet {t}: boxes must be (n, 5) '
                         f'[x1, y1, x2, y2, score] for n={z.size} slices, got shape {boxes.shape}')
    return z, boxes


def _bulk_arrays(trks: Sequence[Any]):
    """One volume's tracklets, all ``(n, 6)`` arrays or all Tracklet-like objects, converted
    with one concatenation -> (lengths, z, boxes); None if the fast path does not apply (the
    per-tracklet path then names any malformed tracklet)."""
    if not trks:
        return None
    try:
        if all(isinstance(t, np.ndarray) for t in trks):
            if not all(t.ndim == 2 and t.shape[1] == 6 for t in trks):
                return None
            arr = np.concatenate(trks).astype(np.float64, copy=False)
            return [t.shape[0] for t in trks], arr[:, 0], arr[:, 1:]
        if all(hasattr(t, 'boxes') and hasattr(t, 'z') for t in trks):
            zs = [np.asarray(t.z).ravel() for t in trks]
            bs = [np.asarray(t.boxes) for t in trks]
            if not all(b.ndim == 2 and b.shape[1] == 5 and b.shape[0] == z.size
                       for z, b in zip(zs, bs)):
                return None
            return ([z.size for z in zs], np.concatenate(zs).astype(np.float64),
                    np.concatenate(bs).astype(np.float64, copy=False))
    except (TypeError, ValueError):
        return None
    return None


def _boxes_array(bs: list, locate) -> np.ndarray:
    """List of per-slice boxes -> (n, 5); ``locate(i)`` names box ``i`` in error messages."""
    arr = None
    try:
        if bs and isinstance(bs[0], np.ndarray):
            arr = np.asarray(bs, dtype=np.float64)
        elif set(map(len, bs)) == {5}:  # flat iteration beats asarray on nested lists ~2x
            arr = np.fromiter(chain.from_iterable(bs), np.float64, count=5 * len(bs))
            arr = arr.reshape(-1, 5)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 5:
        rows = []
        for i, b in enumerate(bs):
            try:
                r = np.asarray(b, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                r = None
            if r is None or r.size != 5:
                raise ValueError(f'{locate(i)}: expected [x1, y1, x2, y2, score], got {b!r}')
            rows.append(r)
        arr = np.stack(rows)
    return arr


def pack_tracklets(detections: Mapping[Any, Sequence[Any]], keys: Sequence[str]) -> PackedTracklets:
    """Flatten tracklets of the given volume keys into arrays.

    Args:
        detections: ``{key: [tracklet, ...]}``; a tracklet is a sequence of
            ``(z, [x1, y1, x2, y2, score])``, an ``(n, 6)`` array ``[z, x1, y1, x2, y2, score]``
            or an object with ``z`` ``(n,)`` and ``boxes`` ``(n, 5)`` attributes.  Keys may carry
            ``.annot``.
        keys: volumes to take, in this order (keys absent from ``detections`` have no tracklets).

    Raises:
        ValueError: naming the volume, tracklet and box of malformed input (empty tracklet,
            box without 5 numbers, non-integer z, non-finite values).
    """
    dets = {normalize_key(k): v for k, v in detections.items()}
    if len(dets) != len(detections):
        raise ValueError('detections list a volume twice (with and without ".annot")')
    trk_vol, trk_idx, lens = [], [], []
    segments = []  # ('pairs', [(z, box), ...]) or ('arrays', z, boxes), in tracklet order
    pending = []  # (z, box) pairs of consecutive list-type tracklets, converted in bulk

    for v, key in enumerate(keys):
        trks = dets.get(key)
        if trks is None:
            continue
        if set(map(type, trks)) <= {list, tuple}:  # the LH layout: convert the volume in bulk
            n_each = list(map(len, trks))
            if 0 in n_each:
                raise ValueError(f'detections of {key!r}, tracklet {n_each.index(0)}: '
                                 'empty tracklet')
            trk_vol.extend([v] * len(trks))
            trk_idx.extend(range(len(trks)))
            lens.extend(n_each)
            pending.extend(chain.from_iterable(trks))
            continue
        bulk = _bulk_arrays(trks)
        if bulk is not None:  # all (n, 6) arrays or all Tracklet objects: one concatenation
            n_each, z, boxes = bulk
            if 0 in n_each:
                raise ValueError(f'detections of {key!r}, tracklet {n_each.index(0)}: '
                                 'empty tracklet')
            if pending:
                segments.append(('pairs', pending))
                pending = []
            segments.append(('arrays', z, boxes))
            trk_vol.extend([v] * len(trks))
            trk_idx.extend(range(len(trks)))
            lens.extend(n_each)
            continue
        for t, trk in enumerate(trks):
            if isinstance(trk, (list, tuple)):
                n = len(trk)
                pending.extend(trk)
            else:
                if pending:
                    segments.append(('pairs', pending))
                    pending = []
                z, boxes = _array_tracklet(trk, key, t)
                n = z.size
                segments.append(('arrays', z, boxes))
            if n == 0:
                raise ValueError(f'detections of {key!r}, tracklet {t}: empty tracklet')
            trk_vol.append(v)
            trk_idx.append(t)
            lens.append(n)
    if pending:
        segments.append(('pairs', pending))

    n_trk = len(lens)
    lens = np.asarray(lens, dtype=np.int64)
    starts = np.cumsum(lens) - lens
    if n_trk == 0:
        empty_i = np.zeros(0, np.int64)
        return PackedTracklets(list(keys), empty_i, empty_i, empty_i, empty_i, np.zeros(0),
                               empty_i, np.zeros((0, 5)), empty_i)
    box_trk = np.repeat(np.arange(n_trk, dtype=np.int64), lens)

    def where(row):
        trk = box_trk[row]
        return (f'detections of {keys[trk_vol[trk]]!r}, tracklet {trk_idx[trk]}, '
                f'box {row - starts[trk]}')

    z_parts, arrays = [], []
    row = 0
    for seg in segments:
        if seg[0] == 'arrays':
            z_parts.append(seg[1])
            arrays.append(seg[2])
            row += seg[1].size
            continue
        pairs = seg[1]
        try:
            well_formed = set(map(len, pairs)) == {2}
        except TypeError:
            well_formed = False
        if not well_formed:
            bad = next(i for i, p in enumerate(pairs)
                       if not (hasattr(p, '__len__') and len(p) == 2))
            raise ValueError(f'{where(row + bad)}: expected a (z, [x1, y1, x2, y2, score]) pair, '
                             f'got {pairs[bad]!r}')
        try:
            z_parts.append(np.fromiter(map(itemgetter(0), pairs), np.float64, count=len(pairs)))
        except (TypeError, ValueError):
            for i, p in enumerate(pairs):
                try:
                    float(p[0])
                except (TypeError, ValueError):
                    raise ValueError(f'{where(row + i)}: slice index must be a number, '
                                     f'got {p[0]!r}') from None
            raise
        arrays.append(_boxes_array(list(map(itemgetter(1), pairs)),
                                   lambda i, row=row: where(row + i)))
        row += len(pairs)
    z = np.concatenate(z_parts)
    boxes = np.concatenate(arrays).astype(np.float64, copy=False)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(z)
    if not finite.all():
        b = int(np.flatnonzero(~finite)[0])
        raise ValueError(f'{where(b)}: non-finite value in z={z[b]!r}, box={boxes[b].tolist()!r}')
    try:
        zi = _integral_z(z, 'detections')
    except ValueError:
        b = int(np.flatnonzero(np.abs(z - np.rint(z)) > 1e-6)[0])
        raise ValueError(f'{where(b)}: slice index {z[b]!r} is not an integer') from None
    scores = np.maximum.reduceat(boxes[:, 4], starts)
    return PackedTracklets(list(keys), np.asarray(trk_vol, dtype=np.int64),
                           np.asarray(trk_idx, dtype=np.int64), starts, lens, scores, zi, boxes,
                           box_trk)


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
                 froc_duplicates: str = 'ignore', plus_one: bool = True) -> FROCResult:
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


def p3d_overlaps(gt_boxes: Any, tracklets: Sequence[Any], plus_one: bool = True) -> np.ndarray:
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
