"""Benchmark: 3D stacking throughput (slices per second, one core).

Synthetic, fixed seed: ``--volumes`` volumes (default 200) of ``--slices`` slices (default 40)
with about ``--dets`` detections per slice (default 10): a few lesion-like objects drifting and
growing smoothly across 3-15 slices with occasional missed slices, plus random clutter.  Prints
the time and slices/s and the number of tracklets, and, side by side in the same run, the same for
the stacker as it was before the speed work of issue 15 (kept below as ``reference_stack_volume``)
with the speed-up and whether the tracklets are identical (exit status 1 if not).  Timings are
printed, never asserted.  Run it with one BLAS thread (``OMP_NUM_THREADS=1``) for a one-core
figure; the script sets that default.

    python tools/benchmarks/bench_stack.py [--volumes 200] [--slices 40] [--dets 10] \
        [--repeat 3] [--no-reference]
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from mmlesion.stacking import KalmanBoxTracker, stack_volume  # noqa: E402
from mmlesion.structures import Tracklet  # noqa: E402
from mmlesion.structures.boxes import box_iou_2d  # noqa: E402
from mmlesion.structures.conventions import STACK_PLUS_ONE  # noqa: E402


def make_volume(rng: np.random.Generator, n_slices: int, dets_per_slice: float,
                image_size=(512, 512)):
    """``{z: (n, 5)}`` detections of one synthetic sub-volume (absolute z from 100)."""
    w_img, h_img = image_size
    z0 = 100
    slices = {z: [] for z in range(z0, z0 + n_slices)}
    n_objects = max(1, int(round(dets_per_slice * 0.3)))
    for _ in range(n_objects * 3):
        length = int(rng.integers(3, 16))
        start = int(rng.integers(z0, z0 + n_slices - 2))
        cx, cy = rng.uniform(50, w_img - 50), rng.uniform(50, h_img - 50)
        size = rng.uniform(8, 80)
        drift = rng.normal(0, 0.02 * size, size=2)
        peak = rng.uniform(0.2, 0.95)
        for k in range(length):
            z = start + k
            if z not in slices or rng.random() < 0.08:  # missed slice
                continue
            grow = 1.0 - abs(k - length / 2) / length  # grows then shrinks
            s = size * (0.7 + 0.3 * grow)
            c = np.array([cx, cy]) + drift * k + rng.normal(0, 0.01 * size, size=2)
            score = float(np.clip(peak * (0.6 + 0.4 * grow) + rng.normal(0, 0.03), 0, 1))
            slices[z].append([c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2, score])
    for z in slices:
        n_clutter = rng.poisson(max(dets_per_slice * 0.8, 0.0))
        for _ in range(n_clutter):
            cx, cy = rng.uniform(0, w_img), rng.uniform(0, h_img)
            s = rng.uniform(6, 60)
            slices[z].append([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2,
                              float(rng.uniform(0, 0.6))])
    return {z: np.asarray(v, dtype=np.float64).reshape(-1, 5) for z, v in slices.items()}


# ---- the reference: the stacker before the speed work (issue 15), kept to time and check ----


def _ref_prepare_slice(z, dets, image_size, score_thr) -> np.ndarray:
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


class _RefTrack:
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


def _ref_link(slices: Dict[int, np.ndarray], link_iou: float, plus_one: bool) -> List[_RefTrack]:
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
                active.append(_RefTrack(z, dets[c]))
    finished.extend(active)
    return finished


def _ref_connection_iou(a: _RefTrack, b: _RefTrack, extend: int, plus_one: bool) -> Optional[float]:
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


def _ref_fuse(tracks: List[_RefTrack], extend: int, fuse_iou: float,
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
                          _ref_connection_iou(tracks[i], tracks[j], extend, plus_one))
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


def reference_stack_volume(slice_dets, image_size, *, score_thr=0.1, link_iou=0.8, extend=1,
                           fuse_iou=0.8, plus_one=STACK_PLUS_ONE):
    """:func:`mmlesion.stacking.stack_volume` as it was before the speed work (same arguments,
    same tracklets): per-slice numpy, one ``_RefTrack`` object per detection, filterpy filters."""
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
        kept = _ref_prepare_slice(zi, dets, image_size, score_thr)
        if len(kept):
            slices[zi] = kept
    tracks = _ref_link(slices, link_iou, plus_one)
    fused = _ref_fuse(tracks, extend, fuse_iou, plus_one)
    out = [Tracklet(np.asarray(z, dtype=np.int64), np.stack(b), np.asarray(f, dtype=bool))
           for z, b, f in fused]
    out.sort(key=lambda t: (-t.score, int(t.z[0]), tuple(t.boxes[0, :4]), len(t)))
    return out


def _same(a, b) -> bool:
    """Identical tracklet lists: order, slices, boxes to the last bit, gap flags."""
    return len(a) == len(b) and all(
        np.array_equal(x.z, y.z) and x.boxes.tobytes() == y.boxes.tobytes() and
        np.array_equal(x.filled, y.filled) for x, y in zip(a, b))


def _time(fn, volumes, score_thr):
    t0 = time.perf_counter()
    results = [fn(v, (512, 512), score_thr=score_thr) for v in volumes]
    return time.perf_counter() - t0, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--volumes', type=int, default=200,
                        help='synthetic volumes (default 200)')
    parser.add_argument('--slices', type=int, default=40, help='slices per volume (default 40)')
    parser.add_argument('--dets', type=float, default=10.0,
                        help='mean detections per slice (default 10)')
    parser.add_argument('--score-thr', type=float, default=0.1,
                        help='stacking score threshold t_G (default 0.1)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs of each stacker, interleaved; the best is printed '
                        '(default 3)')
    parser.add_argument('--no-reference', action='store_true',
                        help='skip timing the pre-issue-15 reference stacker side by side')
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    volumes = [make_volume(rng, args.slices, args.dets) for _ in range(args.volumes)]
    n_slices = sum(len(v) for v in volumes)
    n_dets = sum(len(d) for v in volumes for d in v.values())
    n_kept = sum(int((d[:, 4] > args.score_thr).sum()) for v in volumes for d in v.values())
    print(f'synthetic: {args.volumes} volumes, {n_slices} slices, {n_dets} detections '
          f'({n_dets / n_slices:.1f}/slice), {n_kept} above t_G={args.score_thr}')

    runs = [stack_volume] if args.no_reference else [stack_volume, reference_stack_volume]
    best, out = {}, {}
    for _ in range(max(args.repeat, 1)):  # interleaved, so both see the same machine load
        for fn in runs:
            dt, out[fn] = _time(fn, volumes, args.score_thr)
            best[fn] = min(dt, best.get(fn, dt))
    dt, results = best[stack_volume], out[stack_volume]
    n_trk = sum(len(r) for r in results)
    n_multi = sum(1 for r in results for t in r if len(t) > 1)
    n_filled = sum(int(t.filled.sum()) for r in results for t in r)
    print(f'stack_volume (best of {max(args.repeat, 1)}): {dt:.2f} s, {n_slices / dt:.0f} '
          f'slices/s, {n_kept / dt:.0f} kept dets/s; {n_trk} tracklets ({n_multi} spanning > 1 '
          f'slice, {n_filled} gap slices bridged)')
    ok = True
    if not args.no_reference:
        dt_ref, ref = best[reference_stack_volume], out[reference_stack_volume]
        same = all(_same(a, b) for a, b in zip(results, ref))
        ok &= same
        print(f'reference (pre-issue-15): {dt_ref:.2f} s, {n_slices / dt_ref:.0f} slices/s; '
              f'speed-up x{dt_ref / dt:.2f}; identical tracklets: {same}')

    again = [stack_volume(v, (512, 512), score_thr=args.score_thr) for v in volumes[:5]]
    same = all(_same(a, b) for a, b in zip(again, results[:5]))
    print('deterministic on a re-run:', same)
    return 0 if ok and same else 1


if __name__ == '__main__':
    raise SystemExit(main())
