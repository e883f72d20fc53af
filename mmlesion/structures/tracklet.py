"""The tracklet: a 3D proposal as 2D boxes on slices of one sub-volume, and its array forms.

One type, :class:`Tracklet`, is what the stacker produces, the inference API returns, the
metrics store and the overlays draw.  Files and older code hold tracklets in two more layouts,
read here and nowhere else (:func:`tracklet_parts`):

* the Lesion Harvester list ``[(z, [x1, y1, x2, y2, score]), ...]``;
* an ``(n, 6)`` array ``[z, x1, y1, x2, y2, score]``.

Coordinates are those of the data they came from (mmlesion's frame in memory: absolute z,
0-based continuous corners; see :mod:`mmlesion.structures.conventions`).  For evaluation many
tracklets are flattened into :class:`PackedTracklets` by :func:`pack_tracklets` (vectorised;
the layouts above, mixed freely).
"""
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, List, Mapping, NamedTuple, Sequence, Tuple

import numpy as np

from .volume_key import normalize_key

__all__ = ['Tracklet', 'as_tracklet', 'as_tracklets', 'tracklet_parts', 'tracklet_array',
           'PackedTracklets', 'pack_tracklets', 'integral_slice_indices']


@dataclass
class Tracklet:
    """A 3D proposal: 2D boxes on slices of one sub-volume.

    Attributes:
        z: ``(n,)`` int64 slice indices (absolute in mmlesion's frame), ascending; the stacker
            emits consecutive slices.
        boxes: ``(n, 5)`` float64 ``[x1, y1, x2, y2, score]``, 0-based continuous corners (px)
            inside ``[0, W] x [0, H]`` when produced by the stacker.
        filled: ``(n,)`` bool, True where the box was interpolated across a bridged gap.

    Raises:
        ValueError: no slice, mismatched lengths, or a non-integer slice index.
    """
    z: np.ndarray
    boxes: np.ndarray
    filled: np.ndarray = field(default=None)

    def __post_init__(self):
        z = np.asarray(self.z)
        if z.dtype.kind not in 'iu':
            z = integral_slice_indices(np.asarray(z, dtype=np.float64).ravel(), 'Tracklet')
        self.z = np.asarray(z, dtype=np.int64).ravel()
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 5)
        if self.filled is None:
            self.filled = np.zeros(self.z.size, dtype=bool)
        self.filled = np.asarray(self.filled, dtype=bool).ravel()
        if not (self.z.size == self.boxes.shape[0] == self.filled.size) or self.z.size == 0:
            raise ValueError(f'Tracklet needs n >= 1 slices with one box each; got {self.z.size} '
                             f'z, {self.boxes.shape[0]} boxes, {self.filled.size} flags')

    @classmethod
    def from_valid_arrays(cls, z: np.ndarray, boxes: np.ndarray,
                          filled: np.ndarray) -> 'Tracklet':
        """A tracklet from arrays its producer already guarantees, without the checks and
        conversions of the constructor (the stacker emits one per proposal, tens per slice).

        Args:
            z: ``(n,)`` int64, ``n >= 1``.
            boxes: ``(n, 5)`` float64.
            filled: ``(n,)`` bool.

        The arrays are used as given (no copy).
        """
        trk = cls.__new__(cls)
        trk.z, trk.boxes, trk.filled = z, boxes, filled
        return trk

    def __len__(self) -> int:
        return int(self.z.size)

    @property
    def score(self) -> float:
        """Tracklet score: the maximum slice score."""
        return float(self.boxes[:, 4].max())

    @property
    def best_index(self) -> int:
        """Index of the highest-scoring slice (first one on ties)."""
        return int(np.argmax(self.boxes[:, 4]))

    @property
    def box3d(self) -> np.ndarray:
        """Enclosing box ``[x1, y1, z1, x2, y2, z2]``, z continuous: ``z[0] - 0.5 .. z[-1] + 0.5``
        (the convention of ``3D-Box.pkl`` and :func:`mmlesion.structures.boxes.box_iou_3d`)."""
        b = self.boxes
        return np.array([b[:, 0].min(), b[:, 1].min(), self.z.min() - 0.5,
                         b[:, 2].max(), b[:, 3].max(), self.z.max() + 0.5])

    def to_array(self) -> np.ndarray:
        """``(n, 6)`` float64 ``[z, x1, y1, x2, y2, score]``."""
        return np.concatenate([self.z[:, None].astype(np.float64), self.boxes], axis=1)

    def to_lh(self) -> List[Tuple[int, List[float]]]:
        """``[(z, [x1, y1, x2, y2, score]), ...]`` with Python types, in this tracklet's frame."""
        return [(int(z), [float(v) for v in b]) for z, b in zip(self.z, self.boxes)]


def tracklet_parts(trk: Any, where: str = 'tracklet') -> Tuple[np.ndarray, np.ndarray]:
    """Any accepted tracklet layout -> ``(z (n,), boxes (n, 5))`` float64 (frame unchanged).

    Accepts a :class:`Tracklet` (or an object with ``z`` and ``boxes``), an ``(n, 6)`` array
    ``[z, x1, y1, x2, y2, score]`` or the Lesion Harvester list ``[(z, [x1, .., score]), ...]``.

    Raises:
        ValueError: naming ``where`` (and the box) for any other shape.
    """
    if hasattr(trk, 'boxes') and hasattr(trk, 'z'):
        z = np.asarray(trk.z, dtype=np.float64).ravel()
        boxes = np.asarray(trk.boxes, dtype=np.float64)
    elif isinstance(trk, np.ndarray):
        if trk.ndim != 2 or trk.shape[1] != 6:
            raise ValueError(f'{where}: expected an (n, 6) array [z, x1, y1, x2, y2, score], '
                             f'got shape {trk.shape}')
        z, boxes = trk[:, 0].astype(np.float64), trk[:, 1:].astype(np.float64)
    elif isinstance(trk, (list, tuple)):
        rows = []
        for i, item in enumerate(trk):
            try:
                z_i, box = item
                row = [float(z_i), *(float(v) for v in box)]
            except (TypeError, ValueError):
                row = None
            if row is None or len(row) != 6:
                raise ValueError(f'{where}, box {i}: expected (z, [x1, y1, x2, y2, score]), '
                                 f'got {item!r}')
            rows.append(row)
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        z, boxes = arr[:, 0], arr[:, 1:]
    else:
        raise ValueError(f'{where}: expected a list of (z, [x1, y1, x2, y2, score]) pairs, an '
                         f'(n, 6) array or a Tracklet, got {type(trk).__name__}')
    if boxes.ndim != 2 or boxes.shape[1] != 5 or boxes.shape[0] != z.size:
        raise ValueError(f'{where}: boxes must be (n, 5) [x1, y1, x2, y2, score] for n={z.size} '
                         f'slices, got shape {boxes.shape}')
    return z, boxes


def as_tracklet(trk: Any, where: str = 'tracklet') -> Tracklet:
    """``trk`` itself when it is a :class:`Tracklet`, else a new one from any accepted layout."""
    if isinstance(trk, Tracklet):
        return trk
    z, boxes = tracklet_parts(trk, where)
    if z.size == 0:
        raise ValueError(f'{where}: empty tracklet')
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(boxes))):
        raise ValueError(f'{where}: non-finite value')
    filled = getattr(trk, 'filled', None)
    return Tracklet(integral_slice_indices(z, where), boxes, filled)


def as_tracklets(tracklets: Sequence[Any], where: str = 'volume') -> List[Tracklet]:
    """:func:`as_tracklet` of each tracklet of one volume (order kept)."""
    return [as_tracklet(t, f'{where}, tracklet {i}') for i, t in enumerate(tracklets)]


def tracklet_array(trk: Any, where: str = 'tracklet') -> np.ndarray:
    """One tracklet in any accepted layout -> ``(n, 6)`` float64 ``[z, x1, y1, x2, y2, score]``."""
    z, boxes = tracklet_parts(trk, where)
    return np.concatenate([z[:, None], boxes], axis=1)


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


def integral_slice_indices(z: np.ndarray, what: str) -> np.ndarray:
    if z.size and not np.all(np.isfinite(z)):
        raise ValueError(f'{what}: non-finite slice index')
    zi = np.rint(z)
    if z.size and np.any(np.abs(z - zi) > 1e-6):
        bad = int(np.flatnonzero(np.abs(z - zi) > 1e-6)[0])
        raise ValueError(f'{what}: slice index {z[bad]!r} is not an integer')
    return zi.astype(np.int64)


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
                z, boxes = tracklet_parts(trk, f'detections of {key!r}, tracklet {t}')
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
        zi = integral_slice_indices(z, 'detections')
    except ValueError:
        b = int(np.flatnonzero(np.abs(z - np.rint(z)) > 1e-6)[0])
        raise ValueError(f'{where(b)}: slice index {z[b]!r} is not an integer') from None
    scores = np.maximum.reduceat(boxes[:, 4], starts)
    return PackedTracklets(list(keys), np.asarray(trk_vol, dtype=np.int64),
                           np.asarray(trk_idx, dtype=np.int64), starts, lens, scores, zi, boxes,
                           box_trk)
