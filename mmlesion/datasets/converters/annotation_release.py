"""Import the public DeepLesion annotation releases into mmlesion's COCO-style JSON.

Releases (``/work/shared/data/README.md``), all read with the restricted unpickler
(:func:`mmlesion.utils.safe_pickle.load_pickle`, never plain ``pickle.load``):

- Lesion Harvester 2D (``RECIST-Box-*.pkl``, ``Revised-*.pkl``): ``{key(.annot): {z_rel:
  [[x1, y1, x2, y2, z_rel, z_rel], ...]}}``; z **relative** to the sub-volume start, x/y
  **1-based** (DL_info.csv's frame).
- Lesion Harvester 3D (``3D-Box.pkl``): ``{key: [[x1, y1, x2, y2, z1_rel, z2_rel], ...]}``; relative
  z, possibly half-integer and up to 0.5 slice outside the sub-volume (clamped), x/y 1-based.
- LENS manual 1K (``DeepLesion_manual_1K_test_release.pkl``): ``{'val': {key: B}, 'test':
  {key: B}}`` with B an n x 6 array ``[x1, y1, z1, x2, y2, z2]``; z **absolute**, x/y treated
  as 1-based.  The release does not document its x/y frame; on 2,426 boxes matched (IoU > 0.5)
  to Revised-Test1071 the LENS box centres sit 0.71 px left and 0.47 px above the 1-based LH
  boxes (s.e. 0.05 px), between the two frames, so nothing overrules the 1-based default.

Every loader returns x/y **0-based** (1 subtracted) and z **absolute** DeepLesion slice indices;
the function names say which release frame they read.  :func:`to_coco` builds the JSON of
``docs/data_format.md`` with ``volumes[*].complete`` set for completely annotated sets.

Usage::

    python tools/import_annotations.py --pkl Revised-Test1071.pkl --out vd_test.json \
        --dl-info DeepLesion/DL_info.csv
"""
import argparse
import json
import math
import os
import pickle
import re
import sys
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from mmlesion.datasets.converters.dl_info import DLInfoError, read_dl_info
from mmlesion.structures.volume_key import parse_volume_key, slice_file_name
from mmlesion.utils.fileio import atomic_write_text
from mmlesion.utils.safe_pickle import load_pickle
from mmlesion.version import __version__

PathLike = Union[str, os.PathLike]
Boxes2D = Dict[str, List[Tuple[int, np.ndarray]]]
Boxes3D = Dict[str, np.ndarray]

FORMATS = ('lh2d', 'lh3d', 'lens')
SOURCES = ('recist', 'revised', 'lens', 'harvested', 'mined_3d', 'synthetic_truth')
SPLITS = ('train', 'val', 'test')
LENS_SUBSETS = ('val', 'test')
# DeepLesion's usual size; used, flagged ``size_known: false``, for series missing from --dl-info.
DEFAULT_IMAGE_SIZE = 512
CATEGORIES = [{'id': 1, 'name': 'lesion'}]
COORDINATE_FRAME = '0-based pixels; absolute slice indices'
_ROUND_DIGITS = 9  # removes float noise of ``v - 1`` while keeping every released digit
# Half a slice: 3D-Box.pkl extends boxes by up to 0.5 slice past the sub-volume (min z1 = -0.5).
_Z_TOLERANCE = 0.5


class AnnotationFormatError(ValueError):
    """A release file whose content does not match the expected format."""


def _rounded(a: np.ndarray) -> np.ndarray:
    return np.round(a, _ROUND_DIGITS)


def _volume(key, path: str):
    if not isinstance(key, str):
        raise AnnotationFormatError(f'{path}: volume key {key!r} is not a string')
    try:
        return parse_volume_key(key)
    except ValueError as e:
        raise AnnotationFormatError(f'{path}: {e}') from None


def _strip_annot(key: str) -> str:
    return key[:-len('.annot')] if key.endswith('.annot') else key


def _as_box_array(boxes, path: str, where: str, ncols: int = 6) -> np.ndarray:
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationFormatError(f'{path}: {where}: expected numeric boxes, got '
                                    f'{type(boxes).__name__}') from None
    if arr.size == 0:
        return np.zeros((0, ncols), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != ncols:
        raise AnnotationFormatError(f'{path}: {where}: expected an n x {ncols} box list, got '
                                    f'shape {arr.shape}')
    if not np.isfinite(arr).all():
        raise AnnotationFormatError(f'{path}: {where}: boxes contain NaN/inf')
    return arr


def _check_xy(xyxy: np.ndarray, path: str, where: str) -> None:
    bad = ~((xyxy[:, 0] < xyxy[:, 2]) & (xyxy[:, 1] < xyxy[:, 3]))
    if bad.any():
        raise AnnotationFormatError(f'{path}: {where}: expected x1 < x2 and y1 < y2, got '
                                    f'{xyxy[bad][0].tolist()}')


def _load(path_or_obj, what: str):
    if isinstance(path_or_obj, (str, os.PathLike)):
        return os.fspath(path_or_obj), load_pickle(path_or_obj)
    return f'<{what}>', path_or_obj


def detect_format(obj) -> str:
    """Guess the release format of a loaded pickle: ``'lh2d'``, ``'lh3d'`` or ``'lens'``."""
    if not isinstance(obj, dict):
        raise AnnotationFormatError(f'expected a dict at the top of the pickle, got '
                                    f'{type(obj).__name__}')
    if obj and set(obj) <= set(LENS_SUBSETS) and all(isinstance(v, dict) for v in obj.values()):
        return 'lens'
    values = list(obj.values())
    if values and all(isinstance(v, dict) for v in values):
        return 'lh2d'
    if values and all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        return 'lh3d'
    raise AnnotationFormatError(
        'cannot tell the release format: expected {key: {z: boxes}} (Lesion Harvester 2D), '
        "{key: boxes} (Lesion Harvester 3D) or {'val': ..., 'test': ...} (LENS)")


def load_lh_2d(path_or_obj) -> Boxes2D:
    """Read a Lesion Harvester 2D file (``RECIST-Box-*``, ``Revised-*``).

    Input frame: z relative to the sub-volume start (dict key and box columns 4, 5), x/y
    1-based.  Keys may end in ``.annot`` (stripped).

    Returns:
        ``{volume_key: [(z_abs, box_0based), ...]}`` sorted by z (file order within a slice);
        ``z_abs`` = start + z_rel (int), ``box_0based`` a float64 array (4,) ``x1, y1, x2, y2``
        with 1 subtracted.  Volumes without boxes map to ``[]``.
    """
    return _lh_2d(*_load(path_or_obj, 'lh2d'))


def _lh_2d(path: str, obj) -> Boxes2D:
    if not isinstance(obj, dict):
        raise AnnotationFormatError(f'{path}: expected a dict of sub-volumes')
    out: Boxes2D = {}
    for raw_key, slices in obj.items():
        vk = _volume(raw_key, path)
        key = _strip_annot(raw_key)
        if key in out:
            raise AnnotationFormatError(f'{path}: sub-volume {key} appears twice')
        if not isinstance(slices, dict):
            raise AnnotationFormatError(f'{path}: {raw_key}: expected {{z_rel: boxes}}, got '
                                        f'{type(slices).__name__} (is this a 3D file? '
                                        'use --format lh3d)')
        entries = []
        for z_rel in sorted(slices, key=float):
            zf = float(z_rel)
            if zf != int(zf) or not 0 <= zf <= vk.end - vk.start:
                raise AnnotationFormatError(
                    f'{path}: {raw_key}: expected an integer relative slice in 0..'
                    f'{vk.end - vk.start}, got {z_rel!r}')
            z_rel_i = int(zf)
            arr = _as_box_array(slices[z_rel], path, f'{raw_key} z={z_rel}')
            if arr.size and not (arr[:, 4:6] == z_rel_i).all():
                raise AnnotationFormatError(
                    f'{path}: {raw_key} z={z_rel}: box z columns {arr[:, 4:6].tolist()} '
                    'differ from the slice key')
            _check_xy(arr[:, :4], path, f'{raw_key} z={z_rel}')
            xyxy = _rounded(arr[:, :4] - 1.0)
            entries.extend((vk.start + z_rel_i, b) for b in xyxy)
        out[key] = entries
    return out


def _clamp_z(z12: np.ndarray, start: int, end: int, path: str, key: str,
             z_margin: float = 0.0, clamp: bool = True):
    """Clamp absolute z extents to ``[start - z_margin, end + z_margin]``; return (clamped,
    number of boxes clamped).  ``clamp=False`` checks the boxes but keeps them."""
    if z12.size == 0:
        return z12, 0
    if (z12[:, 0] > z12[:, 1]).any():
        raise AnnotationFormatError(f'{path}: {key}: expected z1 <= z2, got '
                                    f'{z12[z12[:, 0] > z12[:, 1]][0].tolist()}')
    if (z12[:, 1] < start - _Z_TOLERANCE).any() or (z12[:, 0] > end + _Z_TOLERANCE).any():
        raise AnnotationFormatError(f'{path}: {key}: a box lies outside the sub-volume\'s '
                                    f'slices {start}..{end}: {z12.tolist()}')
    if not clamp:
        return z12, 0
    clamped = np.clip(z12, start - z_margin, end + z_margin)
    return clamped, int((clamped != z12).any(axis=1).sum())


def load_lh_3d(path_or_obj, return_num_clamped: bool = False, z_margin: float = 0.0,
               clamp: bool = True):
    """Read a Lesion Harvester 3D file (``3D-Box.pkl``).

    Input frame: ``[x1, y1, x2, y2, z1_rel, z2_rel]``, x/y 1-based, z relative to the sub-volume
    start, possibly half-integer and up to 0.5 slice past either end.

    Args:
        z_margin: z is clamped to ``[start - z_margin, end + z_margin]``: 0 keeps slice indices
            (import: a box covers slices), 0.5 keeps the slices' continuous extent (3D IoU).
        clamp: False keeps z as released (still checked).

    Returns:
        ``{volume_key: float64 array (n, 6) [x1, y1, x2, y2, z1_abs, z2_abs]}``, x/y 0-based,
        z absolute and clamped (half-integers inside are kept).
        With ``return_num_clamped`` also the number of boxes whose z was clamped.
    """
    out, n_clamped = _lh_3d(*_load(path_or_obj, 'lh3d'), z_margin, clamp)
    return (out, n_clamped) if return_num_clamped else out


def _lh_3d(path: str, obj, z_margin: float = 0.0, clamp: bool = True) -> Tuple[Boxes3D, int]:
    if not isinstance(obj, dict):
        raise AnnotationFormatError(f'{path}: expected a dict of sub-volumes')
    out: Boxes3D = {}
    n_clamped = 0
    for raw_key, boxes in obj.items():
        vk = _volume(raw_key, path)
        key = _strip_annot(raw_key)
        if key in out:
            raise AnnotationFormatError(f'{path}: sub-volume {key} appears twice')
        if isinstance(boxes, dict):
            raise AnnotationFormatError(f'{path}: {raw_key}: expected a box list, got a dict '
                                        '(is this a 2D file? use --format lh2d)')
        arr = _as_box_array(boxes, path, raw_key)
        _check_xy(arr[:, :4], path, raw_key)
        z12, n = _clamp_z(arr[:, 4:6] + vk.start, vk.start, vk.end, path, raw_key, z_margin,
                          clamp)
        n_clamped += n
        out[key] = np.concatenate([_rounded(arr[:, :4] - 1.0), z12], axis=1)
    return out, n_clamped


def load_lens(path_or_obj, subset: Optional[str] = 'test', return_num_clamped: bool = False):
    """Read the LENS manual 1K release (``DeepLesion_manual_1K_test_release.pkl``).

    Input frame: per volume an n x 6 array ``[x1, y1, z1, x2, y2, z2]``, z **absolute**, x/y
    treated as 1-based like the other DeepLesion releases.

    Args:
        subset: ``'val'`` (200 volumes), ``'test'`` (800) or None for both.

    Returns:
        ``{volume_key: float64 array (n, 6) [x1, y1, x2, y2, z1_abs, z2_abs]}`` (note the column
        order, the same as :func:`load_lh_3d`), x/y 0-based; empty volumes map to a (0, 6) array.
        With ``return_num_clamped`` also the number of boxes whose z was clamped to the range.
    """
    out, n_clamped = _lens(*_load(path_or_obj, 'lens'), subset)
    return (out, n_clamped) if return_num_clamped else out


def _lens(path: str, obj, subset: Optional[str]) -> Tuple[Boxes3D, int]:
    if not isinstance(obj, dict) or not set(obj) <= set(LENS_SUBSETS) or not obj:
        raise AnnotationFormatError(f"{path}: expected {{'val': {{...}}, 'test': {{...}}}} "
                                    '(LENS manual 1K release)')
    subsets = LENS_SUBSETS if subset is None else (subset, )
    out: Boxes3D = {}
    n_clamped = 0
    for s in subsets:
        if s not in obj:
            raise AnnotationFormatError(f'{path}: no subset {s!r}; the file has {sorted(obj)}')
        for key, boxes in obj[s].items():
            vk = _volume(key, path)
            if key in out:
                raise AnnotationFormatError(f'{path}: sub-volume {key} is in both subsets')
            arr = _as_box_array(boxes, path, f'{s}/{key}')
            xyxy = arr[:, [0, 1, 3, 4]]
            _check_xy(xyxy, path, f'{s}/{key}')
            z12, n = _clamp_z(arr[:, [2, 5]], vk.start, vk.end, path, f'{s}/{key}')
            n_clamped += n
            out[key] = np.concatenate([_rounded(xyxy - 1.0), z12], axis=1)
    return out, n_clamped


def lens_subset_of(path_or_obj) -> Dict[str, str]:
    """``{volume_key: 'val' | 'test'}`` of the LENS release."""
    path, obj = _load(path_or_obj, 'lens')
    return {k: s for s in LENS_SUBSETS if s in obj for k in obj[s]}


# --------------------------------------------------------------------------------------------
# image size / spacing lookup (--dl-info)


def _series_info_from_rows(rows) -> Dict[str, dict]:
    info = {}
    for r in rows:
        if r.series in info:
            continue
        info[r.series] = dict(
            width=r.image_size[0], height=r.image_size[1],
            spacing=[r.spacing_mm[0], r.spacing_mm[1], r.slice_interval_mm],
            slice_interval=r.slice_interval_mm,
            dicom_window=[int(v) if float(v).is_integer() else v for v in r.dicom_window],
            split=r.split, gender=r.gender, age=r.age)
    return info


def _series_info_from_json(paths: List[str]) -> Dict[str, dict]:
    info = {}
    for p in paths:
        with open(p, encoding='utf-8') as f:
            data = json.load(f)
        if not isinstance(data, dict) or 'images' not in data:
            raise AnnotationFormatError(f'{p}: expected mmlesion COCO-style JSON with "images"')
        for im in data['images']:
            s = im.get('series')
            if s is None or s in info or im.get('size_known') is False:
                continue
            info[s] = dict(width=im['width'], height=im['height'], spacing=im.get('spacing'),
                           slice_interval=im.get('slice_interval'),
                           dicom_window=im.get('dicom_window'), split=im.get('split'),
                           gender=im.get('gender'), age=im.get('age'))
    return info


def load_series_info(path: PathLike) -> Dict[str, dict]:
    """Per-series image size, spacing, window and split, to fill imported images.

    Args:
        path: a ``DL_info.csv``, a converted JSON (``train.json``...), or a folder holding
            ``DL_info.csv`` or the converted ``{train,val,test}.json``.

    Returns:
        ``{series: dict(width, height, spacing [x, y, z] mm, slice_interval, dicom_window,
        split, gender, age)}`` (first row / image of each series).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        csv_path = os.path.join(path, 'DL_info.csv')
        if os.path.isfile(csv_path):
            path = csv_path
        else:
            jsons = [os.path.join(path, f'{s}.json') for s in SPLITS
                     if os.path.isfile(os.path.join(path, f'{s}.json'))]
            if not jsons:
                raise FileNotFoundError(f'{path}: expected DL_info.csv or train/val/test.json '
                                        'in this folder')
            return _series_info_from_json(jsons)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'--dl-info file not found: {path}')
    if path.lower().endswith('.json'):
        return _series_info_from_json([path])
    # Unrelated malformed rows must not block an import: skip them (the converter reports them).
    return _series_info_from_rows(read_dl_info(path, skip_invalid=True).rows)


# --------------------------------------------------------------------------------------------
# JSON


def source_for_file(path: str) -> Optional[str]:
    """Annotation ``source`` implied by a release file name, or None when it says nothing."""
    name = os.path.basename(path).lower()
    if name.startswith('revised') or name.startswith('3d-box'):
        return 'revised'
    if name.startswith('recist'):
        return 'recist'
    if 'manual_1k' in name or 'lens' in name:
        return 'lens'
    if name.startswith('mined') or 'hardnegative' in name:
        return 'harvested'
    return None


def split_for_file(path: str) -> Optional[str]:
    """Official split implied by a release file name (``*-Test*`` -> test ...), or None."""
    name = os.path.basename(path).lower()
    if name.startswith('3d-box'):
        return 'test'  # 272 of the V_D^test sub-volumes
    for token, split in (('train', 'train'), ('valid', 'val'), ('test', 'test')):
        if re.search(rf'(^|[-_]){token}', name):
            return split
    return None


def _z_of_3d_box(z1: float, z2: float, start: int, end: int) -> int:
    # The slice nearest the box's z centre (half up), inside the sub-volume.
    return int(min(max(math.floor((z1 + z2) / 2.0 + 0.5), start), end))


def to_coco(boxes_by_volume: Union[Boxes2D, Boxes3D],
            source: str,
            split: Union[str, Dict[str, str]],
            series_info: Optional[Dict[str, dict]] = None,
            complete: bool = True,
            hard_negative: bool = False,
            source_name: str = 'annotation release') -> dict:
    """Build mmlesion COCO-style JSON from loaded release boxes.

    Args:
        boxes_by_volume: :func:`load_lh_2d` output (``{key: [(z_abs, xyxy_0based)]}``) or
            :func:`load_lh_3d` / :func:`load_lens` output (``{key: (n, 6) [x1, y1, x2, y2, z1_abs,
            z2_abs]}``), x/y 0-based.  A 3D box becomes one annotation on the slice nearest its
            z centre, carrying ``bbox_3d`` = [x1, y1, x2, y2, z1, z2] (0-based, absolute z).
        source: annotation ``source`` (``'revised'``, ``'recist'``, ``'lens'``...).
        split: ``'train' | 'val' | 'test'`` for all volumes, or ``{key: split}``.
        series_info: :func:`load_series_info` output; without it (or for a series it lacks)
            images are 512 x 512 with ``size_known: false`` and spacing/window null.
        complete: ``volumes[*].complete`` (True for completely annotated sets).
        hard_negative: mark every box as a hard negative.
        source_name: recorded in ``info.source``.

    Returns:
        The JSON dict; images one per annotated slice sorted by (volume, slice), ids from 1;
        every volume (also empty ones) listed in ``volumes``.
    """
    if source not in SOURCES:
        raise ValueError(f'source must be one of {SOURCES}, got {source!r}')
    series_info = series_info or {}
    images, annotations, volumes = [], [], []
    for key in sorted(boxes_by_volume):
        vk = parse_volume_key(key)
        series = vk.series_name
        vsplit = split[key] if isinstance(split, dict) else split
        if vsplit not in SPLITS:
            raise ValueError(f'{key}: split must be one of {SPLITS}, got {vsplit!r}')
        si = series_info.get(series)
        volumes.append(OrderedDict(
            id=key, series=series, slice_range=[vk.start, vk.end],
            spacing=si['spacing'] if si else None, split=vsplit, complete=bool(complete)))

        value = boxes_by_volume[key]
        per_slice: Dict[int, list] = {}
        if isinstance(value, np.ndarray):  # 3D boxes
            value = value.reshape(-1, 6)
            for b in value:
                z = _z_of_3d_box(b[4], b[5], vk.start, vk.end)
                per_slice.setdefault(z, []).append((b[:4], [float(v) for v in b]))
        else:
            for z, b in value:
                per_slice.setdefault(int(z), []).append((np.asarray(b, dtype=np.float64), None))
        for z in sorted(per_slice):
            image_id = len(images) + 1
            images.append(OrderedDict(
                id=image_id, file_name=slice_file_name(series, z),
                width=si['width'] if si else DEFAULT_IMAGE_SIZE,
                height=si['height'] if si else DEFAULT_IMAGE_SIZE,
                volume_id=key, series=series, slice_index=z, slice_range=[vk.start, vk.end],
                spacing=si['spacing'] if si else None,
                slice_interval=si['slice_interval'] if si else None,
                dicom_window=si['dicom_window'] if si else None, split=vsplit,
                patient_index=vk.patient, study_index=vk.study, series_id=vk.series,
                gender=si['gender'] if si else None, age=si['age'] if si else None,
                size_known=si is not None))
            for xyxy, box3d in per_slice[z]:
                x1, y1, x2, y2 = (float(v) for v in xyxy)
                w, h = round(x2 - x1, _ROUND_DIGITS), round(y2 - y1, _ROUND_DIGITS)
                ann = OrderedDict(
                    id=len(annotations) + 1, image_id=image_id, category_id=1,
                    bbox=[x1, y1, w, h], area=round(w * h, _ROUND_DIGITS), iscrowd=0,
                    recist=None, diameters_px=None, lesion_type=-1, noisy=False, source=source,
                    hard_negative=bool(hard_negative), csv_row=None)
                if box3d is not None:
                    ann['bbox_3d'] = box3d
                annotations.append(ann)
    return OrderedDict(
        info=OrderedDict(description=f'{source_name} imported by mmlesion', version=__version__,
                         source=source_name, coordinate_frame=COORDINATE_FRAME),
        categories=CATEGORIES, images=images, annotations=annotations, volumes=volumes)


def import_release(pkl: PathLike,
                   fmt: str = 'auto',
                   subset: Optional[str] = None,
                   dl_info: Optional[PathLike] = None,
                   source: Optional[str] = None,
                   split: Optional[str] = None,
                   complete: Optional[bool] = None,
                   hard_negative: bool = False) -> Tuple[dict, dict]:
    """Load one release file and convert it; returns ``(coco_json, summary)``.

    ``source``/``split`` default to what the file name implies (``Revised-Test1071.pkl`` ->
    revised/test; LENS -> lens and the subset name).  ``complete`` defaults to True except for
    ``recist`` and ``harvested`` sources, which do not annotate every lesion.
    """
    pkl = os.fspath(pkl)
    obj = load_pickle(pkl)
    if fmt == 'auto':
        try:
            fmt = detect_format(obj)
        except AnnotationFormatError as e:
            raise AnnotationFormatError(f'{pkl}: {e}') from None
    if fmt not in FORMATS:
        raise ValueError(f'format must be auto or one of {FORMATS}, got {fmt!r}')
    try:
        detected = detect_format(obj)
    except AnnotationFormatError:
        detected = fmt  # let the loader name what is wrong
    if detected != fmt:
        raise AnnotationFormatError(f'{pkl}: --format {fmt} given, but the file looks like '
                                    f'{detected}')
    if subset is not None and fmt != 'lens':
        raise ValueError(f'--subset applies to the LENS release only (format is {fmt})')
    n_clamped = 0
    if fmt == 'lh2d':
        boxes = _lh_2d(pkl, obj)
    elif fmt == 'lh3d':
        boxes, n_clamped = _lh_3d(pkl, obj)
    else:
        boxes, n_clamped = _lens(pkl, obj, subset)
    source = source or source_for_file(pkl) or ('lens' if fmt == 'lens' else None)
    if source is None:
        raise ValueError(f'{pkl}: cannot tell the annotation source from the file name; pass '
                         f'--source ({", ".join(SOURCES)})')
    series_info = load_series_info(dl_info) if dl_info is not None else {}
    if split is not None:
        splits: Union[str, Dict[str, str]] = split
    elif fmt == 'lens':
        splits = lens_subset_of(obj)
    else:
        splits = split_for_file(pkl)
        if splits is None:
            by_info = {k: series_info.get(parse_volume_key(k).series_name, {}).get('split')
                       for k in boxes}
            if not by_info or None in by_info.values():
                raise ValueError(f'{pkl}: cannot tell the split from the file name; pass --split '
                                 'or --dl-info covering every series')
            splits = by_info
    if complete is None:
        complete = source not in ('recist', 'harvested')
    coco = to_coco(boxes, source=source, split=splits, series_info=series_info,
                   complete=complete, hard_negative=hard_negative,
                   source_name=os.path.basename(pkl) + (f' [{subset}]' if subset else ''))
    n_boxes = len(coco['annotations'])
    matched = {v['id'] for v in coco['volumes']
               if parse_volume_key(v['id']).series_name in series_info}
    summary = OrderedDict(
        file=pkl, format=fmt, subset=subset, source=source, complete=complete,
        volumes=len(coco['volumes']), boxes=n_boxes,
        empty_volumes=sum(len(boxes[k]) == 0 for k in boxes),
        images=len(coco['images']), boxes_z_clamped=n_clamped,
        volumes_per_split=dict(Counter(v['split'] for v in coco['volumes'])),
        volumes_with_known_size=len(matched),
        volumes_with_unknown_size=len(coco['volumes']) - len(matched))
    return coco, summary


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Import a Lesion Harvester / LENS annotation release (pickle, read with a '
        'restricted unpickler) into mmlesion COCO-style JSON: x/y 1-based -> 0-based, z -> '
        'absolute slice indices.')
    p.add_argument('--pkl', required=True, help='release pickle')
    p.add_argument('--out', required=True, help='output JSON')
    p.add_argument('--format', default='auto', choices=('auto', ) + FORMATS,
                   help='lh2d: RECIST-Box-*/Revised-*; lh3d: 3D-Box; lens: LENS manual 1K')
    p.add_argument('--subset', choices=LENS_SUBSETS, default=None,
                   help='LENS subset (default: both, split = subset name)')
    p.add_argument('--dl-info', default=None,
                   help='DL_info.csv, a converted JSON, or a folder with either: fills image '
                   'size / spacing / window by series')
    p.add_argument('--source', choices=SOURCES, default=None,
                   help='annotation source (default: from the file name)')
    p.add_argument('--split', choices=SPLITS, default=None,
                   help='split of every volume (default: from the file name / LENS subset)')
    c = p.add_mutually_exclusive_group()
    c.add_argument('--complete', dest='complete', action='store_true', default=None,
                   help='mark volumes completely annotated (default except recist/harvested)')
    c.add_argument('--incomplete', dest='complete', action='store_false',
                   help='mark volumes partially annotated (unmarked lesions may exist)')
    p.add_argument('--hard-negatives', action='store_true',
                   help='the file lists hard negatives: set hard_negative: true on every box')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        coco, summary = import_release(
            args.pkl, fmt=args.format, subset=args.subset, dl_info=args.dl_info,
            source=args.source, split=args.split, complete=args.complete,
            hard_negative=args.hard_negatives)
    except (AnnotationFormatError, DLInfoError, FileNotFoundError, ValueError,
            pickle.UnpicklingError) as e:
        # UnsafePickleError (a refused global) is an UnpicklingError: report it, load nothing.
        print(f'error: {e}', file=sys.stderr)
        return 1
    atomic_write_text(args.out, json.dumps(coco, allow_nan=False))
    s = summary
    print(f'{s["file"]}: format {s["format"]}, source {s["source"]}, complete {s["complete"]}')
    print(f'volumes: {s["volumes"]} ({s["empty_volumes"]} empty; per split '
          f'{s["volumes_per_split"]}), boxes: {s["boxes"]}, images (annotated slices): '
          f'{s["images"]}, boxes with z clamped to the sub-volume: {s["boxes_z_clamped"]}')
    if args.dl_info is None:
        print('image size unknown (no --dl-info): width = height = 512, size_known: false, '
              'spacing null')
    else:
        print(f'image size / spacing from {args.dl_info}: {s["volumes_with_known_size"]} volumes '
              f'matched, {s["volumes_with_unknown_size"]} not (512 x 512, size_known: false)')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
