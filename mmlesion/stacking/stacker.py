"""Stack 2D slice detections of one sub-volume into 3D proposals (tracklets).

Lesion Harvester, Sec. III-B2 (docs/method.md#stacking):

1. Keep 2D detections with score > ``score_thr`` (t_G; 0.1 when harvesting).
2. Walk the slices in increasing z.  Every active track predicts its box on the next slice with
   a constant-velocity Kalman filter (:class:`KalmanBoxTracker`); tracks and the slice's
   detections are matched by optimal assignment (``scipy.optimize.linear_sum_assignment``)
   maximising the IoU between predicted and detected boxes, only pairs with IoU > ``link_iou``
   (0.8) being admissible.  Matched detections extend their track; unmatched detections start
   new tracks; unmatched tracks end.  A slice without kept detections ends every track, so a
   track is a run of *consecutive* slices.
3. Bridging: each track is virtually extended by ``extend`` (1) slices up and down, repeating
   its end boxes.  Two tracks A (ending at ``a1``) and B (starting at ``b0 > a1``) whose
   extended ranges share slices are *connected*; they are fused when the IoU of their boxes is
   >= ``fuse_iou`` (0.8) on every connecting slice.  With ``extend=1`` this bridges a one-slice
   gap (and rejoins tracks broken between adjacent slices) comparing A's last box with B's first
   box.  Each track fuses with at most one successor and one predecessor; candidates are taken
   greedily by decreasing overlap (ties: earlier end slice, then track order), so chains form
   deterministically.  Tracks that overlap in z are never fused (they are parallel findings).

Output *(ours)*: boxes are the **raw detections** (clipped), not Kalman estimates -- P3D scores
the box on the ground truth's slice, and a filtered box lags a growing lesion.  On a bridged gap
slice the box is the linear interpolation between the two bordering detections, with the
smaller of their scores, flagged in ``Tracklet.filled``.  Unfused extensions are *not* emitted.
Boxes are clipped to the image ``[0, W] x [0, H]`` (continuous corners, 0-based pixels:
:mod:`mmlesion.structures.conventions`); a detection left with zero width or height after
clipping is dropped.
Tracklet score = max slice score.  The result is deterministic (stable sorts everywhere, no
randomness); tracklets are returned by decreasing score, ties by first slice then box.
"""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from mmlesion.structures.boxes import box_iou_2d
from mmlesion.structures.conventions import STACK_PLUS_ONE
from mmlesion.structures.tracklet import Tracklet

from .kalman_box_tracker import KalmanBoxTracker

__all__ = ['stack_volume', 'stack_volumes', 'tracklets_to_lh']


def _prepare_slice(z, dets, image_size, score_thr) -> np.ndarray:
    arr = np.asarray(dets, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f'slice {z}: detections must be (n, 5) [x1, y1, x2, y2, score], '
                         f'got shape {arr.shape}')
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f'slice {z}, detection {bad}: non-finite value {arr[bad].tolist()}')
    arr = arr[arr[:, 4] > score_thr]
    w, h = image_size
    arr = arr.copy()
    arr[:, [0, 2]] = np.clip(arr[:, [0, 2]], 0.0, w)
    arr[:, [1, 3]] = np.clip(arr[:, [1, 3]], 0.0, h)
    arr = arr[(arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])]
    # highest score first, ties by coordinates: tracks are born in an order that does not
    # depend on how the detector listed its boxes
    return arr[np.lexsort((arr[:, 3], arr[:, 2], arr[:, 1], arr[:, 0], -arr[:, 4]))]


class _Track:
    """A growing track; the Kalman filter is created lazily at the first link.

    Most tracks are single-slice clutter.  With zero initial velocity the filter's first
    prediction is the birth box itself, so the filter is only built (and advanced by that first
    predict) when a second detection is linked -- the same estimates, at a fraction of the cost.
    """
    __slots__ = ('kf', 'z', 'boxes')

    def __init__(self, z: int, box: np.ndarray):
        self.kf = None
        self.z = [z]
        self.boxes = [box]

    def predict(self) -> np.ndarray:
        if self.kf is None:
            return np.asarray(self.boxes[0][:4], dtype=np.float64)
        return self.kf.predict()

    def update(self, box: np.ndarray) -> None:
        if self.kf is None:
            self.kf = KalmanBoxTracker(self.boxes[0])
            self.kf.predict()
        self.kf.update(box)


def _link(slices: Dict[int, np.ndarray], link_iou: float, plus_one: bool) -> List[_Track]:
    finished, active = [], []
    prev_z = None
    for z in sorted(slices):
        dets = slices[z]
        if prev_z is None or z != prev_z + 1:
            finished.extend(active)
            active = []
        prev_z = z
        matched_dets = set()
        still_active = []
        if active and len(dets):
            pred = np.stack([t.predict() for t in active])
            iou = box_iou_2d(pred, dets[:, :4], plus_one)
            # inadmissible pairs must not compete with admissible ones in the assignment
            gain = np.where(iou > link_iou, iou, 0.0)
            rows, cols = linear_sum_assignment(gain, maximize=True)
            taken = set()
            for r, c in zip(rows, cols):
                if gain[r, c] > 0.0:
                    trk = active[r]
                    trk.update(dets[c])
                    trk.z.append(z)
                    trk.boxes.append(dets[c])
                    taken.add(r)
                    matched_dets.add(c)
            for r, trk in enumerate(active):
                (still_active if r in taken else finished).append(trk)
        else:
            finished.extend(active)
        active = still_active
        for c in range(len(dets)):
            if c not in matched_dets:
                active.append(_Track(z, dets[c]))
    finished.extend(active)
    return finished


def _connection_iou(a: _Track, b: _Track, extend: int, plus_one: bool) -> Optional[float]:
    """Min IoU over the slices shared by the extended tracks, or None if not connected."""
    a_first, a_last = a.z[0], a.z[-1]
    b_first = b.z[0]
    if b_first <= a_last:
        return None  # overlapping in z: parallel tracks, never fused
    lo, hi = b_first - extend, a_last + extend
    if lo > hi:
        return None
    # a box of an extended track on slice s: its real box if inside, else its nearest end box
    ia = [min(max(s - a_first, 0), len(a.z) - 1) for s in range(lo, hi + 1)]
    ib = [min(max(s - b_first, 0), len(b.z) - 1) for s in range(lo, hi + 1)]
    box_a = np.stack([a.boxes[i][:4] for i in ia])
    box_b = np.stack([b.boxes[i][:4] for i in ib])
    return float(np.diagonal(box_iou_2d(box_a, box_b, plus_one)).min())


def _fuse(tracks: List[_Track], extend: int, fuse_iou: float,
          plus_one: bool) -> List[Tuple[List[int], List[np.ndarray], List[bool]]]:
    n = len(tracks)
    # canonical order: by first slice, then the first box, so indices do not depend on how the
    # tracker happened to finish tracks
    order = sorted(range(n), key=lambda i: (tracks[i].z[0], tuple(tracks[i].boxes[0][:4]),
                                            tracks[i].z[-1], i))
    tracks = [tracks[i] for i in order]
    candidates = []
    if extend > 0:
        by_start: Dict[int, List[int]] = {}
        by_end: Dict[int, List[int]] = {}
        for j, t in enumerate(tracks):
            by_start.setdefault(t.z[0], []).append(j)
            by_end.setdefault(t.z[-1], []).append(j)
        for a_last in sorted(by_end):
            ends = by_end[a_last]
            last_boxes = np.stack([tracks[i].boxes[-1][:4] for i in ends])
            for b_first in range(a_last + 1, a_last + 2 * extend + 1):
                starts = by_start.get(b_first)
                if not starts:
                    continue
                first_boxes = np.stack([tracks[j].boxes[0][:4] for j in starts])
                # IoU(last of A, first of B) is always one of the connecting-slice overlaps, so
                # it prefilters the candidates in one vectorised call
                pre = box_iou_2d(last_boxes, first_boxes, plus_one)
                for r, c in zip(*np.nonzero(pre >= fuse_iou)):
                    i, j = ends[r], starts[c]
                    ov = (float(pre[r, c]) if extend == 1 else
                          _connection_iou(tracks[i], tracks[j], extend, plus_one))
                    if ov is not None and ov >= fuse_iou:
                        candidates.append((-ov, a_last, i, j))
    candidates.sort()
    succ, pred = {}, {}
    for _, _, i, j in candidates:
        if i not in succ and j not in pred:
            succ[i], pred[j] = j, i
    out = []
    for i in range(n):
        if i in pred:
            continue
        zs, boxes, filled = [], [], []
        cur = i
        while True:
            t = tracks[cur]
            if zs:
                last_z, last_box = zs[-1], boxes[-1]
                gap = t.z[0] - last_z
                for k in range(1, gap):  # interpolate the bridged slices
                    w = k / gap
                    box = (1 - w) * last_box + w * t.boxes[0]
                    box[4] = min(last_box[4], t.boxes[0][4])
                    zs.append(last_z + k)
                    boxes.append(box)
                    filled.append(True)
            zs.extend(t.z)
            boxes.extend(t.boxes)
            filled.extend([False] * len(t.z))
            if cur not in succ:
                break
            cur = succ[cur]
        out.append((zs, boxes, filled))
    return out


def stack_volume(slice_dets: Mapping[int, np.ndarray], image_size: Tuple[float, float], *,
                 score_thr: float = 0.1, link_iou: float = 0.8, extend: int = 1,
                 fuse_iou: float = 0.8, plus_one: bool = STACK_PLUS_ONE) -> List[Tracklet]:
    """Stack one sub-volume's 2D detections into tracklets.

    Args:
        slice_dets: ``{z: (n, 5) [x1, y1, x2, y2, score]}``; z absolute slice index (int), boxes
            0-based continuous corners (px).  Slices may be missing or empty.
        image_size: ``(W, H)`` in pixels (columns, rows); boxes are clipped to
            ``[0, W] x [0, H]``.
        score_thr: keep detections with score > ``score_thr`` (t_G).
        link_iou: admissible IoU between a track's predicted box and a detection (> 0.8).
        extend: slices of virtual extension used to bridge gaps (0 disables fusion).
        fuse_iou: overlap needed on the connecting slices to fuse two tracks (>= 0.8).
        plus_one: inclusive-pixel IoU for linking and fusion (default continuous).

    Returns:
        Tracklets sorted by decreasing score (ties: first slice, then first box).
    """
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f'image_size must be (W, H) > 0, got {image_size!r}')
    if extend < 0:
        raise ValueError(f'extend must be >= 0, got {extend}')
    slices = {}
    for z, dets in slice_dets.items():
        zi = int(z)
        if zi != z:
            raise ValueError(f'slice index {z!r} is not an integer')
        if zi in slices:
            raise ValueError(f'slice {zi} given twice')
        kept = _prepare_slice(zi, dets, image_size, score_thr)
        if len(kept):
            slices[zi] = kept
    tracks = _link(slices, link_iou, plus_one)
    fused = _fuse(tracks, extend, fuse_iou, plus_one)
    out = [Tracklet(np.asarray(z, dtype=np.int64), np.stack(b), np.asarray(f, dtype=bool))
           for z, b, f in fused]
    out.sort(key=lambda t: (-t.score, int(t.z[0]), tuple(t.boxes[0, :4]), len(t)))
    return out


def stack_volumes(dets_by_volume: Mapping[str, Mapping[int, np.ndarray]],
                  image_sizes, **kwargs) -> Dict[str, List[Tracklet]]:
    """:func:`stack_volume` for many volumes.

    Args:
        dets_by_volume: ``{volume_key: {z: (n, 5)}}``.
        image_sizes: one ``(W, H)`` for all volumes or ``{volume_key: (W, H)}``.
        **kwargs: passed to :func:`stack_volume`.
    """
    out = {}
    for key in sorted(dets_by_volume):
        size = image_sizes[key] if isinstance(image_sizes, Mapping) else image_sizes
        out[key] = stack_volume(dets_by_volume[key], size, **kwargs)
    return out


def tracklets_to_lh(tracklets: Mapping[str, Sequence[Tracklet]]) -> Dict[str, list]:
    """``{key: [Tracklet]}`` -> the Lesion Harvester layout ``{key: [[(z, [x1..score])]]}``.

    Same frame as the tracklets (mmlesion: absolute z, 0-based); write files with
    :func:`mmlesion.evaluation.detection_io.save_lh_detections`, which converts to the file frame.
    """
    return {key: [t.to_lh() for t in trks] for key, trks in tracklets.items()}
