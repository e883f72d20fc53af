"""Proposal files: the 3D lesion proposals of a scan, with labels where known (docs/proposals.md).

A *proposal* is one tracklet of the lesion proposal generator's scan of a sub-volume
(docs/method.md#stacking); the lesion proposal classifier (LPC, docs/method.md#lpc) is trained and
evaluated on them, and the harvest rounds split them into P_M^R, P_M^-, P_H^R
(docs/method.md#harvesting).  :class:`ProposalSet` holds a scan's proposals in memory and reads
and writes the one file format, JSON (``format: "mmlesion-proposals"``, ``version: 1``):

* every scanned volume is listed, those without proposals included (with their slice range,
  spacing and image size, so patches can be cut without the annotation file);
* per proposal: the tracklet (absolute z, 0-based continuous-corner boxes with per-slice scores),
  ``s_g`` (the max slice score), the top-objectness slice ``best_z`` and its box, the label
  (1 lesion, 0 not a lesion, -1 unknown), where the label came from, and ``s_c`` once an LPC has
  scored it.

Frames (:mod:`mmlesion.structures.conventions`): mmlesion's, absolute z, 0-based x/y.  Files are
written atomically (:mod:`mmlesion.utils.fileio`); reading a missing, empty, truncated or
malformed file raises an error naming the file (and the volume and proposal).
"""
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Union

import numpy as np

from .tracklet import Tracklet, as_tracklet
from .volume import VolumeInfo, volume_info_from_key
from .volume_key import normalize_key

__all__ = ['Proposal', 'ProposalSet', 'proposals_from_predictions', 'PROPOSAL_FORMAT',
           'PROPOSAL_VERSION', 'LABEL_POSITIVE', 'LABEL_NEGATIVE', 'LABEL_UNKNOWN', 'LABELS',
           'LABEL_SOURCES']

PROPOSAL_FORMAT = 'mmlesion-proposals'
PROPOSAL_VERSION = 1
LABEL_POSITIVE = 1  # hits a lesion (P3D rule)
LABEL_NEGATIVE = 0  # hits no lesion of a completely annotated volume
LABEL_UNKNOWN = -1  # hits no RECIST mark of a partially annotated volume, or never labelled
LABELS = (LABEL_POSITIVE, LABEL_NEGATIVE, LABEL_UNKNOWN)
# 'complete': labelled against all lesions of the volume; 'recist': against its RECIST marks only
LABEL_SOURCES = ('complete', 'recist')

PathLike = Union[str, os.PathLike]


@dataclass
class Proposal:
    """One 3D proposal of one sub-volume.

    Attributes:
        key: the sub-volume key ``PPPPPP_SS_RR_SSS-EEE``.
        index: position in the volume's list (the scan's order: highest ``s_g`` first).
        tracklet: absolute z, ``[x1, y1, x2, y2, score]`` 0-based continuous corners (px).
        label: :data:`LABEL_POSITIVE`, :data:`LABEL_NEGATIVE` or :data:`LABEL_UNKNOWN`.
        label_source: ``'complete'``, ``'recist'`` or None (not labelled).
        gt_index: the ground truth the proposal hits best (its position in the volume's boxes of
            the labelling annotation set), -1 when none.
        s_c: the LPC's probability, None until scored.
    """
    key: str
    index: int
    tracklet: Tracklet
    label: int = LABEL_UNKNOWN
    label_source: Optional[str] = None
    gt_index: int = -1
    s_c: Optional[float] = None

    @property
    def s_g(self) -> float:
        """LPG objectness of the proposal: the max slice score."""
        return self.tracklet.score

    @property
    def best_z(self) -> int:
        """Absolute slice of the highest slice score (the top-objectness slice)."""
        return int(self.tracklet.z[self.tracklet.best_index])

    @property
    def best_box(self) -> np.ndarray:
        """``[x1, y1, x2, y2, score]`` on :attr:`best_z`."""
        return self.tracklet.boxes[self.tracklet.best_index].copy()

    @property
    def box3d(self) -> np.ndarray:
        """Enclosing ``[x1, y1, z1, x2, y2, z2]``, continuous z (``Tracklet.box3d``)."""
        return self.tracklet.box3d

    def to_dict(self) -> dict:
        t = self.tracklet
        d = dict(index=int(self.index), s_g=self.s_g, best_z=self.best_z,
                 best_box=[float(v) for v in self.best_box], label=int(self.label),
                 label_source=self.label_source, gt_index=int(self.gt_index),
                 s_c=None if self.s_c is None else float(self.s_c),
                 z=[int(v) for v in t.z], boxes=t.boxes.tolist())
        if t.filled.any():
            d['filled'] = [bool(v) for v in t.filled]
        return d


def _volume_to_dict(v: VolumeInfo) -> dict:
    return dict(key=v.key, series=v.series, slice_range=[int(s) for s in v.slice_range],
                spacing=None if v.spacing is None else
                [None if s is None else float(s) for s in v.spacing],
                slice_interval=None if v.slice_interval is None else float(v.slice_interval),
                image_size=None if v.image_size is None else [int(s) for s in v.image_size],
                missing_slices=None if v.missing_slices is None else
                [int(s) for s in v.missing_slices])


@dataclass
class ProposalSet:
    """The proposals of a scan, grouped by volume.

    Attributes:
        volumes: ``{key: VolumeInfo}`` of every scanned volume, sorted by key (volumes without
            proposals included).
        proposals: by volume (key order), then by ``index``.
        meta: free-form provenance (detector config and checkpoint, ``score_thr``, label files).
        path: the file it was read from or last written to.
    """
    volumes: Dict[str, VolumeInfo]
    proposals: List[Proposal] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)
    path: Optional[str] = None

    def __post_init__(self):
        self.volumes = {k: self.volumes[k] for k in sorted(self.volumes)}
        unknown = sorted({p.key for p in self.proposals} - set(self.volumes))
        if unknown:
            raise ValueError(f'proposals of volumes not in the set: {unknown[:5]}')
        order = {k: i for i, k in enumerate(self.volumes)}
        self.proposals = sorted(self.proposals, key=lambda p: (order[p.key], p.index))

    def __len__(self) -> int:
        return len(self.proposals)

    def __iter__(self) -> Iterator[Proposal]:
        return iter(self.proposals)

    def by_volume(self) -> Dict[str, List[Proposal]]:
        """``{key: [proposal, ...]}`` for every volume (empty lists included)."""
        out: Dict[str, List[Proposal]] = {k: [] for k in self.volumes}
        for p in self.proposals:
            out[p.key].append(p)
        return out

    def labels(self) -> np.ndarray:
        """``(n,)`` int64 labels in proposal order."""
        return np.asarray([p.label for p in self.proposals], dtype=np.int64)

    def s_g(self) -> np.ndarray:
        """``(n,)`` float64 LPG objectness in proposal order."""
        return np.asarray([p.s_g for p in self.proposals], dtype=np.float64)

    def label_counts(self) -> Dict[str, int]:
        """Number of positive, negative and unknown proposals."""
        y = self.labels()
        return dict(positive=int((y == LABEL_POSITIVE).sum()),
                    negative=int((y == LABEL_NEGATIVE).sum()),
                    unknown=int((y == LABEL_UNKNOWN).sum()))

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        groups = self.by_volume()
        return dict(
            format=PROPOSAL_FORMAT, version=PROPOSAL_VERSION,
            frame=dict(z='absolute DeepLesion slice index',
                       xy='0-based pixels, continuous corners [x1, y1, x2, y2]'),
            labels={'1': 'lesion', '0': 'not a lesion', '-1': 'unknown'},
            meta=_jsonable(self.meta),
            volumes=[dict(_volume_to_dict(v), proposals=[p.to_dict() for p in groups[k]])
                     for k, v in self.volumes.items()])

    def save(self, path: PathLike) -> None:
        """Write the set as JSON, atomically (a reader never sees a partial file)."""
        from mmlesion.utils.fileio import atomic_write_text
        path = os.fspath(path)
        atomic_write_text(path, json.dumps(self.to_dict(), allow_nan=False))
        self.path = path

    @classmethod
    def from_dict(cls, obj: Any, where: str = '<dict>') -> 'ProposalSet':
        """Parse the JSON layout; ``where`` names the source in errors."""
        if not isinstance(obj, Mapping):
            raise ValueError(f'{where}: not a proposal file (expected a JSON object, got '
                             f'{type(obj).__name__})')
        if obj.get('format') != PROPOSAL_FORMAT:
            raise ValueError(f'{where}: not a proposal file ("format" is '
                             f'{obj.get("format")!r}, expected {PROPOSAL_FORMAT!r}; see '
                             'docs/proposals.md)')
        version = obj.get('version')
        if not isinstance(version, int) or not 1 <= version <= PROPOSAL_VERSION:
            raise ValueError(f'{where}: proposal file version {version!r} is not supported '
                             f'(this mmlesion reads 1..{PROPOSAL_VERSION})')
        vols = obj.get('volumes')
        if not isinstance(vols, list):
            raise ValueError(f'{where}: "volumes" must be a list')
        volumes: Dict[str, VolumeInfo] = {}
        proposals: List[Proposal] = []
        for i, v in enumerate(vols):
            info = _parse_volume(v, f'{where}, volume {i}')
            if info.key in volumes:
                raise ValueError(f'{where}: volume {info.key} is listed twice')
            volumes[info.key] = info
            items = v.get('proposals', [])
            if not isinstance(items, list):
                raise ValueError(f'{where}, volume {info.key}: "proposals" must be a list')
            seen = set()
            for j, p in enumerate(items):
                prop = _parse_proposal(p, info, f'{where}, volume {info.key}, proposal {j}')
                if prop.index in seen:
                    raise ValueError(f'{where}, volume {info.key}: proposal index '
                                     f'{prop.index} is used twice')
                seen.add(prop.index)
                proposals.append(prop)
        meta = obj.get('meta') or {}
        if not isinstance(meta, Mapping):
            raise ValueError(f'{where}: "meta" must be an object')
        return cls(volumes, proposals, dict(meta))

    @classmethod
    def load(cls, path: PathLike) -> 'ProposalSet':
        """Read a proposal file.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is empty, is not complete JSON (e.g. truncated), or is not a
                valid proposal file; the message names the file (and volume, proposal).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'proposal file not found: {path}')
        with open(path, 'rb') as f:
            data = f.read()
        if not data.strip():
            raise ValueError(f'{path}: empty file, not a proposal file (was the scan '
                             'interrupted before writing it?)')
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f'{path}: not a complete JSON proposal file ({e}); a truncated '
                             'file reads like this') from None
        pset = cls.from_dict(obj, path)
        pset.path = path
        return pset


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _num(value, where: str, what: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{where}: "{what}" must be a number, got {value!r}')
    if not math.isfinite(value):
        raise ValueError(f'{where}: "{what}" must be finite, got {value!r}')
    return value


def _parse_volume(v: Any, where: str) -> VolumeInfo:
    if not isinstance(v, Mapping) or not isinstance(v.get('key'), str):
        raise ValueError(f'{where}: a volume must be an object with a "key"')
    try:
        info = volume_info_from_key(v['key'])
    except ValueError as e:
        raise ValueError(f'{where}: {e}') from None
    where = f'{where} ({info.key})'
    rng = v.get('slice_range', list(info.slice_range))
    if (not isinstance(rng, list) or len(rng) != 2
            or [_num(r, where, 'slice_range') for r in rng] != list(info.slice_range)):
        raise ValueError(f'{where}: slice_range {rng!r} does not match the key')
    series = v.get('series', info.series)
    if series != info.series:
        raise ValueError(f'{where}: series {series!r} does not match the key')
    spacing = v.get('spacing')
    if spacing is not None:
        if not isinstance(spacing, list) or len(spacing) != 3:
            raise ValueError(f'{where}: spacing must be [x, y, z] mm or null, got {spacing!r}')
        spacing = [None if s is None else float(_num(s, where, 'spacing')) for s in spacing]
    interval = _num(v.get('slice_interval'), where, 'slice_interval', allow_none=True)
    size = v.get('image_size')
    if size is not None and (not isinstance(size, list) or len(size) != 2):
        raise ValueError(f'{where}: image_size must be [W, H] px or null, got {size!r}')
    missing = v.get('missing_slices')
    if missing is not None and not isinstance(missing, list):
        raise ValueError(f'{where}: missing_slices must be a list or null')
    info.spacing = spacing
    info.slice_interval = None if interval is None else float(interval)
    info.image_size = None if size is None else tuple(int(_num(s, where, 'image_size'))
                                                      for s in size)
    info.missing_slices = None if missing is None else [int(_num(s, where, 'missing_slices'))
                                                        for s in missing]
    return info


def _parse_proposal(p: Any, info: VolumeInfo, where: str) -> Proposal:
    if not isinstance(p, Mapping):
        raise ValueError(f'{where}: a proposal must be an object')
    for name in ('index', 'z', 'boxes'):
        if name not in p:
            raise ValueError(f'{where}: "{name}" is missing')
    z, boxes = p['z'], p['boxes']
    if not isinstance(z, list) or not isinstance(boxes, list) or not z or len(z) != len(boxes):
        raise ValueError(f'{where}: "z" and "boxes" must be non-empty lists of equal length')
    try:
        arr = np.asarray(boxes, dtype=np.float64)
        zz = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: "z" and "boxes" must hold numbers') from None
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f'{where}: each box must be [x1, y1, x2, y2, score]')
    if not (np.all(np.isfinite(arr)) and np.all(np.isfinite(zz))):
        raise ValueError(f'{where}: non-finite value in "z" or "boxes"')
    first, last = info.slice_range
    if zz.min() < first or zz.max() > last:
        raise ValueError(f'{where}: z {int(zz.min())}..{int(zz.max())} lies outside the '
                         f'volume\'s slices {first}-{last} (z must be absolute)')
    try:
        trk = as_tracklet(Tracklet(zz, arr, p.get('filled')), where)
    except ValueError as e:
        raise ValueError(f'{where}: {e}') from None
    s_g = p.get('s_g')
    if s_g is not None and abs(_num(s_g, where, 's_g') - trk.score) > 1e-6:
        raise ValueError(f'{where}: s_g {s_g} is not the max slice score {trk.score}')
    label = p.get('label', LABEL_UNKNOWN)
    if label not in LABELS or isinstance(label, bool):
        raise ValueError(f'{where}: label must be one of {LABELS}, got {label!r}')
    source = p.get('label_source')
    if source is not None and source not in LABEL_SOURCES:
        raise ValueError(f'{where}: label_source must be one of {LABEL_SOURCES} or null, got '
                         f'{source!r}')
    s_c = _num(p.get('s_c'), where, 's_c', allow_none=True)
    return Proposal(key=info.key, index=int(_num(p['index'], where, 'index')), tracklet=trk,
                    label=int(label), label_source=source,
                    gt_index=int(_num(p.get('gt_index', -1), where, 'gt_index')),
                    s_c=None if s_c is None else float(s_c))


def proposals_from_predictions(predictions: Iterable[Any],
                               meta: Optional[Mapping[str, Any]] = None) -> ProposalSet:
    """A :class:`ProposalSet` from a scan: the
    :class:`~mmlesion.apis.inference.VolumePrediction` objects of
    :func:`~mmlesion.apis.predict_volumes` (or anything with ``volume`` -- a VolumeInfo -- and
    ``tracklets``).  Proposals keep the scan's order (highest ``s_g`` first); all unlabelled.
    ``image_size`` of a volume is taken from the prediction when the VolumeInfo lacks it.

    Raises:
        ValueError: a volume is predicted twice.
    """
    volumes: Dict[str, VolumeInfo] = {}
    proposals: List[Proposal] = []
    for pred in predictions:
        info = pred.volume
        key = normalize_key(info.key)
        if key in volumes:
            raise ValueError(f'volume {key} appears twice in the predictions')
        size = info.image_size or getattr(pred, 'image_size', None)
        volumes[key] = VolumeInfo(key=key, series=info.series,
                                  slice_range=tuple(int(s) for s in info.slice_range),
                                  spacing=None if info.spacing is None else list(info.spacing),
                                  slice_interval=info.slice_interval,
                                  missing_slices=info.missing_slices, complete=info.complete,
                                  image_size=None if size is None else tuple(size))
        proposals.extend(Proposal(key=key, index=i, tracklet=as_tracklet(t, f'{key}, {i}'))
                         for i, t in enumerate(pred.tracklets))
    return ProposalSet(volumes, proposals, dict(meta or {}))

