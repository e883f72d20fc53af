"""Read and write detections and annotations in the Lesion Harvester (LH) file formats.

The two frames, ``'lh'`` (relative z, 1-based x/y: every LH file) and ``'mmlesion'`` (absolute
z, 0-based x/y: in memory), are defined in :mod:`mmlesion.structures.conventions`; this module is
where tracklets and boxes change frame on their way in and out.  The released ``evaluation.py``
compares detection z and boxes directly with ``Revised-Test1071.pkl``, so a detection file for
it must be in the ``'lh'`` frame (the default of the writers here).

Detection format: ``{volume_key: [tracklet, ...]}``, a tracklet a list of
``(z, [x1, y1, x2, y2, score])``.  Pickles are written with protocol 2 and only built-in types
(int, float, list, tuple, dict): loadable by the reference script, by Python 2, and by numpy 1
or 2 without any global.  Pickles are read with the restricted unpickler
(:func:`mmlesion.utils.safe_pickle.load_pickle`); JSON files hold ``[z, [x1, y1, x2, y2, score]]``
lists.  All writes are atomic.
"""
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from mmlesion.structures.conventions import FRAMES, check_frame, convert_frame
from mmlesion.structures.tracklet import pack_tracklets
from mmlesion.structures.volume_key import normalize_key, parse_volume_key
from mmlesion.utils.fileio import atomic_dump_json, atomic_dump_pickle
from mmlesion.utils.safe_pickle import load_pickle

__all__ = ['FRAMES', 'load_lh_detections', 'save_lh_detections', 'convert_detections_frame',
           'load_lh_annotation_2d', 'load_lh_boxes_3d', 'save_lh_boxes_3d']

PathOrObj = Union[str, os.PathLike, Mapping[str, Any]]
Tracklets = Dict[str, List[List[Tuple[int, List[float]]]]]


def _load_obj(path_or_obj: PathOrObj) -> Tuple[Mapping[str, Any], str]:
    if isinstance(path_or_obj, Mapping):
        return path_or_obj, '<object>'
    path = os.fspath(path_or_obj)
    if path.lower().endswith('.json'):
        with open(path, encoding='utf-8') as f:
            obj = json.load(f)
    else:
        obj = load_pickle(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f'{path}: expected a dict keyed by sub-volume, got {type(obj).__name__}')
    return obj, path


def _volume_start(key: str, source: str) -> Tuple[str, int, int]:
    try:
        vk = parse_volume_key(normalize_key(key))
    except ValueError as e:
        raise ValueError(f'{source}: {e}') from None
    return str(vk), vk.start, vk.end


def convert_detections_frame(detections: Mapping[str, Any], src: str, dst: str,
                             check_z: bool = True, source: str = '<detections>') -> Tracklets:
    """Convert tracklets between frames; returns plain lists ``(int z, [5 floats])``.

    Args:
        detections: ``{volume_key: [tracklet, ...]}`` (any tracklet layout accepted by
            :func:`mmlesion.evaluation.functional.p3d.pack_tracklets`).
        src, dst: ``'mmlesion'`` or ``'lh'``.
        check_z: require every z to lie inside the key's slice range (catches a relative/absolute
            mix-up); an error names the volume and tracklet.

    Returns:
        ``{canonical_key: [[(z, [x1, y1, x2, y2, score]), ...], ...]}`` in ``dst``; keys without
        ``.annot``, in sorted order; volumes with no tracklets are kept (empty lists).
    """
    check_frame(src, 'src')
    check_frame(dst, 'dst')
    canon = {}
    for key in detections:
        ck, start, end = _volume_start(key, source)
        if ck in canon:
            raise ValueError(f'{source}: sub-volume {ck!r} appears twice')
        canon[ck] = (key, start, end)
    keys = sorted(canon)
    packed = pack_tracklets({ck: detections[canon[ck][0]] for ck in keys}, keys)
    starts = np.array([canon[k][1] for k in keys], dtype=np.int64)
    ends = np.array([canon[k][2] for k in keys], dtype=np.int64)
    vol = packed.trk_volume[packed.box_trk]
    z = packed.z.copy()
    if check_z and z.size:
        lo = np.zeros_like(z) if src == 'lh' else starts[vol]
        hi = ends[vol] - starts[vol] if src == 'lh' else ends[vol]
        bad = np.flatnonzero((z < lo) | (z > hi))
        if bad.size:
            b = int(bad[0])
            t = packed.box_trk[b]
            key = keys[vol[b]]
            raise ValueError(
                f'{source}: {key!r}, tracklet {packed.trk_index[t]}: z={z[b]} outside '
                f'[{lo[b]}, {hi[b]}] -- is the file in the {src!r} frame '
                f'({"relative" if src == "lh" else "absolute"} z)?')
    boxes = packed.boxes.copy()
    z, boxes[:, :4] = convert_frame(z, boxes[:, :4], starts[vol], src, dst)
    out = {k: [] for k in keys}
    z_list = z.tolist()
    box_list = boxes.tolist()
    for t in range(packed.scores.size):
        s, n = packed.trk_start[t], packed.trk_len[t]
        out[keys[packed.trk_volume[t]]].append(
            [(z_list[i], box_list[i]) for i in range(s, s + n)])
    return out


def load_lh_detections(path_or_obj: PathOrObj, frame: str = 'mmlesion',
                       file_frame: str = 'lh', check_z: bool = True) -> Tracklets:
    """Load LH-format detections (``.pkl`` or ``.json``, or an already loaded dict).

    Args:
        path_or_obj: file path (pickles via the restricted unpickler) or the loaded object.
        frame: frame of the returned tracklets: ``'mmlesion'`` (default) or ``'lh'``.
        file_frame: frame of the file: ``'lh'`` (the format's definition) unless you know the
            file was written otherwise.
        check_z: every z must lie inside its key's slice range.

    Returns:
        ``{key: [[(z, [x1, y1, x2, y2, score]), ...], ...]}`` with int z and float lists.
    """
    obj, source = _load_obj(path_or_obj)
    return convert_detections_frame(obj, file_frame, frame, check_z=check_z, source=source)


def save_lh_detections(detections: Mapping[str, Any], path: Union[str, os.PathLike],
                       fmt: Optional[str] = None, frame: str = 'mmlesion',
                       file_frame: str = 'lh') -> None:
    """Write detections in the LH format, atomically.

    Args:
        detections: ``{volume_key: [tracklet, ...]}`` in ``frame`` (tracklets as lists of
            ``(z, [x1, y1, x2, y2, score])``, ``(n, 6)`` arrays or ``Tracklet`` objects).
        path: output file.
        fmt: ``'pkl'`` or ``'json'``; default from the extension (``.json`` -> json, else pkl).
        frame: frame of ``detections`` (default ``'mmlesion'``).
        file_frame: frame written (default ``'lh'``, what the reference evaluator expects).
    """
    path = os.fspath(path)
    if fmt is None:
        fmt = 'json' if path.lower().endswith('.json') else 'pkl'
    if fmt not in ('pkl', 'json'):
        raise ValueError(f"fmt must be 'pkl' or 'json', got {fmt!r}")
    converted = convert_detections_frame(detections, frame, file_frame, source=path)
    if fmt == 'json':
        atomic_dump_json({k: [[[z, b] for z, b in trk] for trk in v]
                          for k, v in converted.items()}, path)
    else:
        atomic_dump_pickle(converted, path, protocol=2)


def load_lh_annotation_2d(path_or_obj: PathOrObj, frame: str = 'mmlesion') -> Dict[str, np.ndarray]:
    """Load a 2D LH annotation file (``Revised-*.pkl``, ``RECIST-Box-*.pkl``).

    The file layout is ``{key[.annot]: {z_rel: [[x1, y1, x2, y2, z, z], ...]}}`` in the LH frame.

    Returns:
        ``{key: (n, 5) float64 [z, x1, y1, x2, y2]}`` in ``frame``, keys without ``.annot``,
        boxes ordered by z then file order (the order :func:`evaluate_p3d` uses for the same
        file, so ``FROCResult.gt_index`` refers to rows of these arrays).
    """
    check_frame(frame)
    # one reader of the format (validation, .annot keys, frame change) serves import and evaluation
    from mmlesion.datasets.converters.annotation_release import load_lh_2d
    out = {}
    for key, entries in load_lh_2d(path_or_obj).items():
        arr = np.array([[z, *box] for z, box in entries], dtype=np.float64).reshape(-1, 5)
        arr[:, 0], arr[:, 1:] = convert_frame(arr[:, 0], arr[:, 1:], parse_volume_key(key).start,
                                              'mmlesion', frame)
        out[key] = arr
    return out


def load_lh_boxes_3d(path_or_obj: PathOrObj, frame: str = 'mmlesion',
                     clamp: bool = True) -> Dict[str, np.ndarray]:
    """Load ``3D-Box.pkl``: ``{key: [[x1, y1, x2, y2, z1, z2], ...]}`` (relative z, 1-based x/y).

    Returns:
        ``{key: (n, 6) float64 [x1, y1, z1, x2, y2, z2]}`` in ``frame`` (note the column order
        changes to the 3D IoU layout).  z extents are continuous (half-integers occur); with
        ``clamp`` they are clipped to the sub-volume, ``[-0.5, n_slices - 0.5]`` relative
        (the file has boxes starting at -0.5 and a few ending past the last slice).
    """
    check_frame(frame)
    # one reader of the format (validation, .annot keys, frame change) serves import and evaluation
    from mmlesion.datasets.converters.annotation_release import load_lh_3d
    out = {}
    for key, arr in load_lh_3d(path_or_obj, z_margin=0.5, clamp=clamp).items():
        arr = arr[:, [0, 1, 4, 2, 3, 5]]
        arr[:, [2, 5]], arr[:, [0, 1, 3, 4]] = convert_frame(
            arr[:, [2, 5]], arr[:, [0, 1, 3, 4]], parse_volume_key(key).start, 'mmlesion', frame)
        out[key] = arr
    return out


def save_lh_boxes_3d(boxes: Mapping[str, Any], path: Union[str, os.PathLike],
                     frame: str = 'mmlesion') -> None:
    """Write 3D boxes in the layout of ``3D-Box.pkl`` (the inverse of :func:`load_lh_boxes_3d`),
    atomically, as a protocol-2 pickle of built-in types.

    Args:
        boxes: ``{key: (n, 6) [x1, y1, z1, x2, y2, z2]}`` in ``frame`` (continuous z, e.g.
            ``Tracklet.box3d``).
        path: output ``.pkl``.
        frame: frame of ``boxes``; the file is in the LH frame: ``{key: [[x1, y1, x2, y2, z1,
            z2], ...]}``, relative z, 1-based x/y.
    """
    check_frame(frame)
    out = {}
    for key in sorted(boxes):
        k = normalize_key(key)
        arr = np.asarray(boxes[key], dtype=np.float64).reshape(-1, 6)
        z, xy = convert_frame(arr[:, [2, 5]], arr[:, [0, 1, 3, 4]], parse_volume_key(k).start,
                              frame, 'lh')
        out[k] = [[float(v) for v in (*r_xy, *r_z)] for r_xy, r_z in zip(xy, z)]
    atomic_dump_pickle(out, os.fspath(path), protocol=2)
