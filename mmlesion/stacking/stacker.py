"""Stack 2D slice detections of one sub-volume into 3D proposals (tracklets).

Lesion Harvester, Sec. III-B2 (docs/method.md#stacking):

1. Keep 2D detections with score > ``score_thr`` (t_G; 0.1 when harvesting).
2. Walk the slices in increasing z.  Every active track predicts its box on the next slice with
   a constant-velocity Kalman filter (:class:`KalmanBoxTracker`, run as its bit-identical
   :class:`ScalarBoxKalman`); tracks and the slice's
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

Implementation: the volume's detections are one ``(N, 5)`` array; filtering, clipping and sorting
are one vectorised pass, the IoU of every detection with those of the next slice(s) one
vectorised call (:func:`mmlesion.structures.boxes.box_iou_2d_pairs`), tracks are integer chains
over detection indices, and only tracks of two or more detections run a filter.  The output is
bit-identical to the per-slice, object-per-detection formulation it replaced (pinned in
tests/test_stacking/test_stacking_pinned.py); ``tools/benchmarks/bench_stack.py`` measures it.
"""
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from mmlesion.structures.boxes import OVERLAP_EPS, box_area_2d, box_iou_2d_pairs
from mmlesion.structures.conventions import STACK_PLUS_ONE
from mmlesion.structures.tracklet import Tracklet

from .kalman_box_tracker import ScalarBoxKalman

__all__ = ['stack_volume', 'stack_volumes', 'tracklets_to_lh']


def _prepare_slice(z, dets, image_size, score_thr) -> np.ndarray:
    """One slice's detections, validated, thresholded, clipped and sorted (reference path)."""
    arr = np.asarray(dets, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5))
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f'slice {z}: detections must be (n, 5) [x1, y1, x2, y2, score], '
                         f'got shape {arr.shape}')
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f'slice {z}, detection {bad}: non-finite value {arr[bad].tolist()}')
    return _filter_sort(arr, np.zeros(len(arr), np.int64), image_size, score_thr)[0]


def _filter_sort(arr, z, image_size, score_thr) -> Tuple[np.ndarray, np.ndarray]:
    """Keep score > t_G, clip to the image, drop empty boxes, sort by (z, -score, x1, y1, x2, y2).

    Highest score first within a slice, ties by coordinates: tracks are born in an order that
    does not depend on how the detector listed its boxes.  ``arr`` (n, 5), ``z`` (n,) int64.
    """
    keep = arr[:, 4] > score_thr
    arr, z = arr[keep], z[keep]  # copies: clipping below does not touch the caller's arrays
    w, h = image_size
    arr[:, [0, 2]] = np.clip(arr[:, [0, 2]], 0.0, w)
    arr[:, [1, 3]] = np.clip(arr[:, [1, 3]], 0.0, h)
    keep = (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
    arr, z = arr[keep], z[keep]
    order = np.lexsort((arr[:, 3], arr[:, 2], arr[:, 1], arr[:, 0], -arr[:, 4], z))
    return arr[order], z[order]


def _prepare(slice_dets, image_size, score_thr) -> Tuple[np.ndarray, np.ndarray]:
    """All kept detections of the volume -> ``(dets (N, 5), z (N,) int64)``, ordered by slice,
    then as :func:`_filter_sort` orders a slice.

    One vectorised pass over the volume when the input is well formed; otherwise (an error to
    report, or a slice index given twice) the per-slice loop, which raises the error of the first
    offending slice in the mapping's order.
    """
    keys, arrays = [], []
    for z, dets in slice_dets.items():
        try:
            zi = int(z)
            arr = np.asarray(dets, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            zi, arr = None, None
        if zi is None or zi != z or (arr.size and (arr.ndim != 2 or arr.shape[1] != 5)):
            return _prepare_per_slice(slice_dets, image_size, score_thr)
        keys.append(zi)
        if arr.size:
            arrays.append((zi, arr))
    if len(set(keys)) != len(keys):
        return _prepare_per_slice(slice_dets, image_size, score_thr)
    if not arrays:
        return np.zeros((0, 5)), np.zeros(0, np.int64)
    arrays.sort(key=lambda item: item[0])
    arr = np.concatenate([a for _, a in arrays])
    if not np.isfinite(arr).all():
        return _prepare_per_slice(slice_dets, image_size, score_thr)
    z = np.repeat(np.array([k for k, _ in arrays], dtype=np.int64), [len(a) for _, a in arrays])
    return _filter_sort(arr, z, image_size, score_thr)


def _prepare_per_slice(slice_dets, image_size, score_thr) -> Tuple[np.ndarray, np.ndarray]:
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
    if not slices:
        return np.zeros((0, 5)), np.zeros(0, np.int64)
    zs = sorted(slices)
    return (np.concatenate([slices[z] for z in zs]),
            np.repeat(np.array(zs, dtype=np.int64), [len(slices[z]) for z in zs]))


def _neighbour_pairs(z: np.ndarray, offset: int) -> Tuple[np.ndarray, np.ndarray]:
    """All detection pairs ``(i, j)`` with ``z[j] == z[i] + offset``; ``z`` (N,) ascending.

    Returns two (P,) int64 arrays, ordered by ``i`` then ``j``."""
    lo = np.searchsorted(z, z + offset, side='left')
    hi = np.searchsorted(z, z + offset, side='right')
    counts = hi - lo
    total = int(counts.sum())
    i = np.repeat(np.arange(z.size, dtype=np.int64), counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, np.repeat(lo, counts) + within


def _admissible(box, rows: list, areas: list, lo: int, hi: int, thr: float,
                plus_one: bool) -> List[Tuple[int, float]]:
    """``[(j, IoU)]`` of the detections ``lo <= j < hi`` with IoU(box, rows[j]) > ``thr``.

    Plain floats, the operations of :func:`mmlesion.structures.boxes.box_iou_2d` in its order
    (same values); pairs without overlap (IoU 0, never admissible as ``thr >= 0``) are skipped
    before the division.  ``areas[j]``: the box areas under the same convention.
    """
    x1, y1, x2, y2 = box
    one = 1.0 if plus_one else 0.0
    area = (x2 - x1 + one) * (y2 - y1 + one) if plus_one else (x2 - x1) * (y2 - y1)
    out = []
    for j in range(lo, hi):
        bx1, by1, bx2, by2, _ = rows[j]
        iw = min(x2, bx2) - max(x1, bx1)
        ih = min(y2, by2) - max(y1, by1)
        if plus_one:
            iw, ih = iw + one, ih + one
        if iw <= 0.0 or ih <= 0.0:
            continue
        inter = iw * ih
        iou = inter / max(area + areas[j] - inter, OVERLAP_EPS)
        if iou > thr:
            out.append((j, iou))
    return out


def _link(dets: np.ndarray, z: np.ndarray, starts: np.ndarray, link_iou: float,
          plus_one: bool) -> Tuple[List[int], List[int], List[int]]:
    """Kalman linking of consecutive slices (module docstring, step 2).

    Args:
        dets: (N, 5) kept detections ordered by slice (:func:`_prepare`).
        z: (N,) int64 slice of each detection.
        starts: (S + 1,) first detection of each non-empty slice, then N.

    Returns:
        ``(track, nxt, finished)``: the track of each detection (the index of the detection
        that started it), the next detection of its track (-1 at the end), and the track ids in
        the order the tracks finished (the order that breaks full ties later).

    The tracks active on a slice are exactly the detections of the slice before (a track
    that is not extended ends).  A track with one detection predicts its birth box (zero
    initial velocity), so its IoU with the next slice's detections is precomputed for the whole
    volume in one vectorised call; only tracks with two or more detections run a Kalman filter
    (:class:`ScalarBoxKalman`).  ``linear_sum_assignment`` (maximising the admissible IoU) is
    called only when admissible pairs compete for a track or a detection: otherwise every
    admissible pair is in every optimal assignment, and nothing else is matched.
    """
    n = len(dets)
    # a pair is matched only if its gain where(IoU > link_iou, IoU, 0) is > 0
    thr = max(float(link_iou), 0.0)
    bounds = starts.tolist()
    ii, jj = _neighbour_pairs(z, 1)
    iou = box_iou_2d_pairs(dets[ii], dets[jj], plus_one)
    sel = np.flatnonzero(iou > thr)
    raw: List[list] = [[] for _ in bounds]  # slice -> [(det i on the slice before, det j, IoU)]
    for s, i, j, g in zip((np.searchsorted(starts, jj[sel], side='right') - 1).tolist(),
                          ii[sel].tolist(), jj[sel].tolist(), iou[sel].tolist()):
        raw[s].append((i, j, g))
    rows = dets.tolist()
    areas = box_area_2d(dets, plus_one).tolist()
    z_list = z.tolist()
    track = list(range(n))
    nxt = [-1] * n
    kalman: Dict[int, ScalarBoxKalman] = {}
    finished: List[int] = []
    active: List[int] = []  # the last detection of each active track, in track order
    active_kf: List[Tuple[int, ScalarBoxKalman]] = []  # (last detection, filter), any order
    for s in range(len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        if active and z_list[lo] != z_list[lo - 1] + 1:  # a slice without detections
            finished.extend([track[d] for d in active])
            active, active_kf = [], []
        if not active:
            active = list(range(lo, hi))
            continue
        # admissible pairs (last detection of an active track, detection, IoU)
        pairs = [p for p in raw[s] if track[p[0]] == p[0]]  # one-detection tracks
        for d, kf in active_kf:
            pairs.extend((d, j, g) for j, g in
                         _admissible(kf.predict(), rows, areas, lo, hi, thr, plus_one))
        if not pairs:
            finished.extend([track[d] for d in active])
            active, active_kf = list(range(lo, hi)), []
            continue
        if (len({p[0] for p in pairs}) < len(pairs) or
                len({p[1] for p in pairs}) < len(pairs)):
            # competing admissible pairs: the optimal assignment over the slice, as ever
            row_of = {d: r for r, d in enumerate(active)}
            gain = np.zeros((len(active), hi - lo))
            for d, j, g in pairs:
                gain[row_of[d], j - lo] = g
            rr, cc = linear_sum_assignment(gain, maximize=True)
            match = {active[r]: lo + c for r, c in zip(rr.tolist(), cc.tolist())
                     if gain[r, c] > 0.0}
        else:
            match = {d: j for d, j, _ in pairs}
        still, active_kf = [], []
        for d in active:
            j = match.get(d)
            t = track[d]
            if j is None:
                finished.append(t)
                continue
            track[j] = t
            nxt[d] = j
            kf = kalman.get(t)
            if kf is None:
                kf = kalman[t] = ScalarBoxKalman(rows[t])
                kf.predict()
            kf.update(rows[j])
            still.append(j)
            active_kf.append((j, kf))
        taken = set(still)
        still.extend([j for j in range(lo, hi) if j not in taken])
        active = still
    finished.extend([track[d] for d in active])
    return track, nxt, finished


def _fuse(dets: np.ndarray, z: np.ndarray, track: List[int], nxt: List[int],
          finished: List[int], extend: int, fuse_iou: float,
          plus_one: bool) -> Tuple[np.ndarray, Dict[int, int], np.ndarray]:
    """Bridging (module docstring, step 3) on the tracks of :func:`_link`.

    Returns:
        ``(tracks, succ, last)``: the track ids (birth detections) in canonical order -- by
        first slice, first box, last slice, finishing order -- ``succ`` mapping a canonical
        index to the canonical index of the track it is fused with, and the last detection of
        each track (canonical order).
    """
    track_arr = np.asarray(track, dtype=np.int64)
    nxt_arr = np.asarray(nxt, dtype=np.int64)
    is_last = nxt_arr < 0
    last_of = np.empty(len(dets), dtype=np.int64)
    last_of[track_arr[is_last]] = np.flatnonzero(is_last)
    fin = np.asarray(finished, dtype=np.int64)
    last = last_of[fin]
    b0 = dets[fin]
    # canonical order: indices do not depend on how the tracker happened to finish tracks
    order = np.lexsort((np.arange(fin.size), z[last], b0[:, 3], b0[:, 2], b0[:, 1], b0[:, 0],
                        z[fin]))
    tracks, last = fin[order], last[order]
    succ: Dict[int, int] = {}
    if extend <= 0:
        return tracks, succ, last
    canon = np.empty(len(dets), dtype=np.int64)  # track id -> canonical index
    canon[tracks] = np.arange(tracks.size)
    is_first = track_arr == np.arange(len(dets))
    cands = []  # (-overlap, last slice of A, canonical A, canonical B)
    for offset in range(1, 2 * extend + 1):
        ii, jj = _neighbour_pairs(z, offset)
        sel = is_last[ii] & is_first[jj]
        ii, jj = ii[sel], jj[sel]
        # IoU(last box of A, first box of B) is always one of the connecting-slice overlaps,
        # so it prefilters the candidates in one vectorised call
        pre = box_iou_2d_pairs(dets[ii], dets[jj], plus_one)
        sel = pre >= fuse_iou
        for i, j, ov in zip(ii[sel].tolist(), jj[sel].tolist(), pre[sel].tolist()):
            a, b = int(canon[track[i]]), int(canon[j])
            if extend != 1:
                ov = _connection_iou(dets, z, nxt, tracks[a], i, j, extend, plus_one)
            if ov >= fuse_iou:
                cands.append((-ov, int(z[i]), a, b))
    cands.sort()
    pred = set()
    for _, _, a, b in cands:
        if a not in succ and b not in pred:
            succ[a] = b
            pred.add(b)
    return tracks, succ, last


def _chain(nxt: List[int], first: int) -> List[int]:
    out = [first]
    while nxt[out[-1]] >= 0:
        out.append(nxt[out[-1]])
    return out


def _connection_iou(dets, z, nxt, a_first: int, a_last: int, b_first: int, extend: int,
                    plus_one: bool) -> float:
    """Min IoU over the slices shared by the extended tracks A and B (B starts after A ends,
    within ``2 * extend`` slices); detections are given by index."""
    a, b = _chain(nxt, int(a_first)), _chain(nxt, b_first)
    za0, zb0 = int(z[a[0]]), int(z[b[0]])
    lo, hi = zb0 - extend, int(z[a_last]) + extend
    # a box of an extended track on slice s: its real box if inside, else its nearest end box
    ia = [a[min(max(s - za0, 0), len(a) - 1)] for s in range(lo, hi + 1)]
    ib = [b[min(max(s - zb0, 0), len(b) - 1)] for s in range(lo, hi + 1)]
    return float(box_iou_2d_pairs(dets[ia], dets[ib], plus_one).min())


def _emit(dets: np.ndarray, z: np.ndarray, track: List[int], tracks: np.ndarray,
          succ: Dict[int, int], last: np.ndarray) -> List[Tracklet]:
    """Tracklets of the fused chains (raw detections plus interpolated gap boxes), sorted by
    decreasing score, ties by first slice, first box, length, then canonical order."""
    n_trk = tracks.size
    # chains are numbered by their head in canonical order; fused members take the head's id
    is_head = np.ones(n_trk, dtype=bool)
    is_head[list(succ.values())] = False
    out_of = np.cumsum(is_head) - 1
    fill_out, fill_z, fill_box = [], [], []
    for a in sorted(succ):
        if not is_head[a]:
            continue
        cur = a
        while cur in succ:
            nxt_trk = succ[cur]
            out_of[nxt_trk] = out_of[a]
            last_z, last_box = int(z[last[cur]]), dets[last[cur]]
            first_box = dets[tracks[nxt_trk]]
            gap = int(z[tracks[nxt_trk]]) - last_z
            for k in range(1, gap):  # interpolate the bridged slices
                w = k / gap
                box = (1 - w) * last_box + w * first_box
                box[4] = min(last_box[4], first_box[4])
                fill_out.append(out_of[a])
                fill_z.append(last_z + k)
                fill_box.append(box)
            cur = nxt_trk
    canon = np.empty(len(dets), dtype=np.int64)
    canon[tracks] = np.arange(n_trk)
    row_out = out_of[canon[np.asarray(track, dtype=np.int64)]]
    row_z, row_box = z, dets
    row_filled = np.zeros(len(dets), dtype=bool)
    if fill_z:
        row_out = np.concatenate([row_out, np.asarray(fill_out, dtype=np.int64)])
        row_z = np.concatenate([z, np.asarray(fill_z, dtype=np.int64)])
        row_box = np.concatenate([dets, np.stack(fill_box)])
        row_filled = np.concatenate([row_filled, np.ones(len(fill_z), dtype=bool)])
    order = np.lexsort((row_z, row_out))
    row_z, row_box, row_filled = row_z[order], row_box[order], row_filled[order]
    counts = np.bincount(row_out, minlength=int(is_head.sum()))
    starts = np.cumsum(counts) - counts
    score = np.maximum.reduceat(row_box[:, 4], starts)
    box0 = row_box[starts]
    final = np.lexsort((np.arange(counts.size), counts, box0[:, 3], box0[:, 2], box0[:, 1],
                        box0[:, 0], row_z[starts], -score))
    ends = starts + counts
    return [Tracklet.from_valid_arrays(row_z[b:e], row_box[b:e], row_filled[b:e])
            for b, e in zip(starts[final].tolist(), ends[final].tolist())]


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
    dets, z = _prepare(slice_dets, image_size, score_thr)
    if not len(dets):
        return []
    starts = np.flatnonzero(np.diff(z, prepend=z[0] - 1))
    starts = np.append(starts, len(dets))
    track, nxt, finished = _link(dets, z, starts, link_iou, plus_one)
    tracks, succ, last = _fuse(dets, z, track, nxt, finished, extend, fuse_iou, plus_one)
    return _emit(dets, z, track, tracks, succ, last)


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
