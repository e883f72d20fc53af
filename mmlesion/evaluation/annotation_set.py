"""Ground truth of an evaluation set, read from mmlesion's JSON or a release pickle.

One loader serves the metrics (:class:`P3DMetric`, :class:`IoU3DMetric`, :class:`Recist2DMetric`),
the volume scan (which volumes to scan, their spacing) and ``tools/eval_p3d.py``, so all of them
see the same volumes and boxes.

Accepted files (format detected from the content):

* mmlesion COCO-style JSON (``docs/data_format.md``).  The annotation set is its ``volumes`` list
  -- volumes without any box included (they count in the FP denominator) -- or, for a JSON
  without ``volumes``, the sub-volumes of its images.  Lesions are the annotations that are not
  hard negatives, not ``iscrowd`` and (with ``drop_noisy``) not ``noisy``.
* Lesion Harvester 2D pickles (``Revised-*.pkl``, ``RECIST-Box-*.pkl``): read with
  :func:`~mmlesion.datasets.converters.annotation_release.load_lh_2d`.
* Lesion Harvester ``3D-Box.pkl`` and the LENS manual 1K release: 3D boxes.  For the 2D metrics a
  3D box becomes one 2D box on the slice nearest its z centre (the importer's rule,
  :func:`~mmlesion.datasets.converters.annotation_release.to_coco`).

Frames of everything returned: x, y **0-based** pixels, z **absolute** slice indices.  3D boxes
are ``[x1, y1, z1, x2, y2, z2]`` with a *continuous* z extent (slice ``k`` spans
``[k - 0.5, k + 0.5]``, the convention of ``3D-Box.pkl`` and of
:func:`~mmlesion.evaluation.functional.tracklet_boxes3d`).  LENS z values are integer slice
indices of the first and last slice a lesion covers *(our reading; the release does not say)*,
so they are widened by half a slice each way; ``3D-Box.pkl`` values are used as given (clamped
to half a slice outside the sub-volume).  In a JSON, ``bbox_3d`` of annotations whose ``source``
is ``'lens'`` is widened the same way, other sources are taken as continuous.
"""
import json
import math
import os
from typing import Dict, List, Optional, Union

import numpy as np

from mmlesion.datasets.converters import annotation_release as release
from mmlesion.evaluation.detection_io import load_lh_boxes_3d
from mmlesion.structures.volume import AnnotationSet, VolumeInfo, volume_info_from_key
from mmlesion.structures.volume_key import normalize_key
from mmlesion.utils.safe_pickle import load_pickle

__all__ = ['load_annotation_set', 'ANN_FORMATS']

ANN_FORMATS = ('auto', 'json', 'lh2d', 'lh3d', 'lens')
PathLike = Union[str, os.PathLike]


def _float_or_none(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _spacing(value, where: str) -> Optional[List[Optional[float]]]:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise ValueError(f'{where}: spacing must be [x, y, z] mm, got {value!r}')
    return [_float_or_none(v) for v in value]


def _volume_from_key(key: str, path: str) -> VolumeInfo:
    try:
        return volume_info_from_key(key)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from None


def _widen_inclusive(boxes: np.ndarray) -> np.ndarray:
    out = np.array(boxes, dtype=np.float64, copy=True)
    out[:, 2] -= 0.5
    out[:, 5] += 0.5
    return out


def _from_coco(coco: dict, path: str, fmt: str, drop_noisy: bool) -> AnnotationSet:
    if not isinstance(coco, dict) or 'images' not in coco or 'annotations' not in coco:
        raise ValueError(f'{path}: expected mmlesion COCO-style JSON with "images" and '
                         '"annotations" (docs/data_format.md)')
    images = {}
    for i, im in enumerate(coco['images']):
        missing = [f for f in ('id', 'volume_id', 'slice_index') if im.get(f) is None]
        if missing:
            raise ValueError(f'{path}: images[{i}] (id {im.get("id")}) lacks {missing} '
                             '(see docs/data_format.md)')
        if im['id'] in images:
            raise ValueError(f'{path}: image id {im["id"]} appears twice')
        images[im['id']] = im

    volumes: Dict[str, VolumeInfo] = {}
    for i, v in enumerate(coco.get('volumes') or []):
        if 'id' not in v:
            raise ValueError(f'{path}: volumes[{i}] has no "id": {v!r}')
        info = _volume_from_key(v['id'], path)
        if info.key in volumes:
            raise ValueError(f'{path}: volume {info.key!r} listed twice in "volumes"')
        if v.get('slice_range') is not None and tuple(int(s) for s in v['slice_range']) != \
                info.slice_range:
            raise ValueError(f'{path}: volume {info.key!r}: slice_range {v["slice_range"]} does '
                             'not match its key')
        info.spacing = _spacing(v.get('spacing'), f'{path}: volume {info.key!r}')
        if info.spacing is not None and len(info.spacing) > 2:
            info.slice_interval = info.spacing[2]
        if v.get('missing_slices') is not None:
            info.missing_slices = [int(s) for s in v['missing_slices']]
        if 'complete' in v:
            info.complete = bool(v['complete'])
        volumes[info.key] = info
    listed = bool(volumes)

    # images fill what the volume entries leave open (and define the set without "volumes")
    for im in images.values():
        key = normalize_key(im['volume_id'])
        if key not in volumes:
            if listed:
                raise ValueError(f'{path}: image id {im["id"]} belongs to volume {key!r}, '
                                 'which is not in "volumes"')
            volumes[key] = _volume_from_key(key, path)
        info = volumes[key]
        first, last = info.slice_range
        if not first <= int(im['slice_index']) <= last:
            raise ValueError(f'{path}: image id {im["id"]}: slice_index {im["slice_index"]} '
                             f'outside {key!r}')
        if not info.has_spacing and im.get('spacing') is not None:
            info.spacing = _spacing(im['spacing'], f'{path}: image id {im["id"]}')
            info.slice_interval = _float_or_none(im.get('slice_interval'))
        if info.image_size is None and im.get('width') and im.get('height') \
                and im.get('size_known', True):
            info.image_size = (int(im['width']), int(im['height']))

    per_image: Dict[int, list] = {i: [] for i in images}
    per_volume_2d: Dict[str, list] = {k: [] for k in volumes}
    per_volume_3d: Dict[str, list] = {k: [] for k in volumes}
    has_3d = False
    for j, ann in enumerate(coco['annotations']):
        img = images.get(ann.get('image_id'))
        if img is None:
            raise ValueError(f'{path}: annotation id {ann.get("id")} (annotations[{j}]) refers '
                             f'to image id {ann.get("image_id")!r}, which is not in "images"')
        if ann.get('hard_negative', False) or ann.get('iscrowd', 0):
            continue
        if drop_noisy and ann.get('noisy', False):
            continue
        bbox = ann.get('bbox')
        try:
            x, y, w, h = (float(b) for b in bbox)
        except (TypeError, ValueError):
            raise ValueError(f'{path}: annotation id {ann.get("id")}: bbox must be [x, y, w, h], '
                             f'got {bbox!r}') from None
        if not all(map(math.isfinite, (x, y, w, h))) or w < 0 or h < 0:
            raise ValueError(f'{path}: annotation id {ann.get("id")}: invalid bbox {bbox!r}')
        key = normalize_key(img['volume_id'])
        z = int(img['slice_index'])
        per_image[img['id']].append([x, y, x + w, y + h])
        per_volume_2d[key].append([z, x, y, x + w, y + h])
        b3 = ann.get('bbox_3d')
        if b3 is not None:
            has_3d = True
            b3 = np.asarray(b3, dtype=np.float64).ravel()
            if b3.size != 6 or not np.all(np.isfinite(b3)):
                raise ValueError(f'{path}: annotation id {ann.get("id")}: bbox_3d must be 6 '
                                 f'numbers [x1, y1, x2, y2, z1, z2], got {ann["bbox_3d"]!r}')
            row = b3[[0, 1, 4, 2, 3, 5]][None]
            if ann.get('source') == 'lens':
                row = _widen_inclusive(row)
            per_volume_3d[key].append(row[0])

    keys = sorted(volumes)
    boxes_2d = {}
    for k in keys:
        arr = np.asarray(per_volume_2d[k], dtype=np.float64).reshape(-1, 5)
        boxes_2d[k] = arr[np.argsort(arr[:, 0], kind='stable')]
    boxes_3d = None
    if has_3d:
        boxes_3d = {k: np.asarray(per_volume_3d[k], dtype=np.float64).reshape(-1, 6)
                    for k in keys}
    image_gt = {i: (normalize_key(images[i]['volume_id']), int(images[i]['slice_index']),
                    np.asarray(per_image[i], dtype=np.float64).reshape(-1, 4))
                for i in images}
    return AnnotationSet(path, fmt, {k: volumes[k] for k in keys}, boxes_2d, boxes_3d, image_gt)


def _from_lh2d(obj, path: str) -> AnnotationSet:
    loaded = release.load_lh_2d(obj)
    volumes, boxes_2d = {}, {}
    for key in sorted(loaded):
        info = _volume_from_key(key, path)
        volumes[info.key] = info
        rows = [[z, *np.asarray(b, dtype=np.float64)[:4]] for z, b in loaded[key]]
        boxes_2d[info.key] = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return AnnotationSet(path, 'lh2d', volumes, boxes_2d)


def load_annotation_set(path: PathLike, fmt: str = 'auto', lens_subset: Optional[str] = None,
                        drop_noisy: bool = True) -> AnnotationSet:
    """Read an annotation file into an :class:`AnnotationSet`.

    Args:
        path: mmlesion JSON (``.json``) or a release pickle (restricted unpickler).
        fmt: ``'auto'`` (JSON by extension, pickles by content), ``'json'``, ``'lh2d'``,
            ``'lh3d'`` or ``'lens'``.
        lens_subset: LENS only: ``'val'``, ``'test'`` or None (both).
        drop_noisy: JSON only: leave out annotations flagged ``noisy`` (as the dataset does).

    Raises:
        FileNotFoundError: no such file.
        ValueError: content that does not match the format, naming the entry.
    """
    if fmt not in ANN_FORMATS:
        raise ValueError(f'annotation format must be one of {ANN_FORMATS}, got {fmt!r}')
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    if fmt == 'json' or (fmt == 'auto' and path.lower().endswith('.json')):
        with open(path, encoding='utf-8') as f:
            try:
                coco = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}: not valid JSON ({e})') from None
        return _from_coco(coco, path, 'json', drop_noisy)
    obj = load_pickle(path)
    if fmt == 'auto':
        try:
            fmt = release.detect_format(obj)
        except release.AnnotationFormatError as e:
            raise ValueError(f'{path}: {e}') from None
    try:
        if fmt == 'lh2d':
            return _from_lh2d(obj, path)
        if fmt == 'lh3d':
            coco = release.to_coco(release.load_lh_3d(obj), source='revised', split='test',
                                   source_name=os.path.basename(path))
            ann = _from_coco(coco, path, 'lh3d', drop_noisy=False)
            # 3D-Box.pkl z is continuous already; the importer clamps it to whole slices, so
            # the 3D boxes are taken from the file with half a slice of slack instead
            boxes_3d = load_lh_boxes_3d(obj, frame='mmlesion')
            ann.boxes_3d = {k: boxes_3d.get(k, np.zeros((0, 6))) for k in ann.volumes}
            ann.images = None
            return ann
        if fmt == 'lens':
            # the release has both subsets; a file holding one of them is read as it is
            subsets = [lens_subset] if lens_subset else \
                [s for s in release.LENS_SUBSETS if isinstance(obj, dict) and s in obj] or [None]
            boxes = {}
            for subset in subsets:
                boxes.update(release.load_lens(obj, subset=subset))
            splits = release.lens_subset_of(obj)
            coco = release.to_coco(boxes, source='lens', split={k: splits[k] for k in boxes},
                                   source_name=os.path.basename(path))
            ann = _from_coco(coco, path, 'lens', drop_noisy=False)
            ann.images = None
            return ann
    except release.AnnotationFormatError as e:
        # the importers name an in-memory object '<lh2d>' etc.: name the file instead
        msg = str(e).replace(f'<{fmt}>', path)
        raise ValueError(msg if msg.startswith(path) else f'{path}: {msg}') from None
    raise ValueError(f'{path}: a pickle cannot be read as {fmt!r}; use lh2d, lh3d or lens')
