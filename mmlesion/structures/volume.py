"""What mmlesion knows about sub-volumes and their ground truth, independent of file formats.

* :class:`VolumeInfo` -- one sub-volume: key, series folder, slice range, spacing.
* :class:`AnnotationSet` -- the ground truth of an annotation file: its volumes (the FP
  denominator of the volume metrics) and their 2D / 3D boxes.

Frames (:mod:`mmlesion.structures.conventions`): x, y 0-based pixels, z absolute slice indices,
3D boxes with a continuous z extent.  Files are read into these by
:func:`mmlesion.evaluation.load_annotation_set`.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .volume_key import normalize_key, parse_volume_key

__all__ = ['VolumeInfo', 'AnnotationSet', 'volume_info_from_key']


@dataclass
class VolumeInfo:
    """What the volume scan needs to know about one sub-volume.

    Attributes:
        key: ``PPPPPP_SS_RR_SSS-EEE``.
        series: ``PPPPPP_SS_RR`` (folder under the image root).
        slice_range: ``(first, last)`` absolute, inclusive.
        spacing: ``[x, y, z]`` mm (z = slice interval) or None when the file does not say.
        slice_interval: mm; None when unknown or NaN (the loaders then repeat the key slice).
        missing_slices: absolute indices known to be absent; None: not scanned (files checked).
        complete: ``volumes[].complete`` of the JSON; None for pickles.
        image_size: ``(W, H)`` px when the file knows it, else None.
    """
    key: str
    series: str
    slice_range: Tuple[int, int]
    spacing: Optional[List[Optional[float]]] = None
    slice_interval: Optional[float] = None
    missing_slices: Optional[List[int]] = None
    complete: Optional[bool] = None
    image_size: Optional[Tuple[int, int]] = None

    @property
    def has_spacing(self) -> bool:
        return (self.spacing is not None and len(self.spacing) >= 2
                and all(v is not None and v > 0 and math.isfinite(v) for v in self.spacing[:2]))


@dataclass
class AnnotationSet:
    """Ground truth of an annotation file, in mmlesion's frame (0-based x/y, absolute z).

    Attributes:
        path: the file it came from.
        fmt: ``'json'``, ``'lh2d'``, ``'lh3d'`` or ``'lens'``.
        volumes: ``{key: VolumeInfo}`` sorted by key: the annotation set (FP denominator).
        boxes_2d: ``{key: (n, 5) float64 [z, x1, y1, x2, y2]}`` for every volume (maybe empty),
            sorted by z then file order.
        boxes_3d: ``{key: (n, 6) float64 [x1, y1, z1, x2, y2, z2]}`` (continuous z) for every
            volume, or None when the file has no 3D boxes.
        images: JSON only: ``{img_id: (volume_id, slice_index, (n, 4) [x1, y1, x2, y2])}`` for
            every image of the file (key slices; images without lesions map to (0, 4)).
    """
    path: str
    fmt: str
    volumes: Dict[str, VolumeInfo]
    boxes_2d: Dict[str, np.ndarray]
    boxes_3d: Optional[Dict[str, np.ndarray]] = None
    images: Optional[Dict[int, Tuple[str, int, np.ndarray]]] = None

    @property
    def keys(self) -> List[str]:
        return list(self.volumes)

    @property
    def num_boxes(self) -> int:
        return int(sum(len(b) for b in self.boxes_2d.values()))

    def incomplete_volumes(self) -> List[str]:
        """Volumes a JSON marks ``complete: false`` (their unmarked lesions count as FPs)."""
        return [k for k, v in self.volumes.items() if v.complete is False]

    def subset(self, keys: Sequence[str]) -> 'AnnotationSet':
        """The same set restricted to ``keys`` (``.annot`` accepted); unknown keys are an error."""
        wanted = [normalize_key(k) for k in keys]
        unknown = [k for k in wanted if k not in self.volumes]
        if unknown:
            raise ValueError(f'{self.path}: {len(unknown)} requested volume(s) are not in the '
                             f'annotation set, e.g. {unknown[:5]}')
        keep = sorted(set(wanted))
        images = None
        if self.images is not None:
            ks = set(keep)
            images = {i: v for i, v in self.images.items() if v[0] in ks}
        return AnnotationSet(
            self.path, self.fmt, {k: self.volumes[k] for k in keep},
            {k: self.boxes_2d[k] for k in keep},
            None if self.boxes_3d is None else {k: self.boxes_3d[k] for k in keep}, images)


def volume_info_from_key(key: str) -> VolumeInfo:
    """A :class:`VolumeInfo` with what the key ``PPPPPP_SS_RR_SSS-EEE[.annot]`` says.

    Raises:
        ValueError: the key is not a sub-volume key.
    """
    vk = parse_volume_key(normalize_key(key))
    return VolumeInfo(key=str(vk), series=vk.series_name, slice_range=(vk.start, vk.end))
