"""Data structures and conventions shared by every layer (numpy only, no MMEngine).

* :mod:`~mmlesion.structures.conventions` -- pixel, slice and frame conventions, stated once;
* :mod:`~mmlesion.structures.boxes` -- 2D/3D box overlaps (the one IoU);
* :mod:`~mmlesion.structures.tracklet` -- :class:`Tracklet`, the 3D proposal type;
* :mod:`~mmlesion.structures.volume` -- :class:`VolumeInfo`, :class:`AnnotationSet`;
* :mod:`~mmlesion.structures.volume_key` -- DeepLesion series / slice / sub-volume names.
"""
from .boxes import (
    box_area_2d,
    box_iobb_2d,
    box_iobb_2d_pairs,
    box_iou_2d,
    box_iou_2d_pairs,
    box_iou_3d,
    box_iou_3d_pairs,
    match_pairs_by_key,
)
from .conventions import (
    EVAL_PLUS_ONE,
    FRAMES,
    LH_FRAME,
    MMLESION_FRAME,
    STACK_PLUS_ONE,
    check_frame,
    convert_frame,
    slice_extent,
)
from .tracklet import (
    PackedTracklets,
    Tracklet,
    as_tracklet,
    as_tracklets,
    pack_tracklets,
    tracklet_array,
    tracklet_parts,
)
from .volume import AnnotationSet, VolumeInfo, volume_info_from_key
from .volume_key import (
    VolumeKey,
    normalize_key,
    parse_dl_file_name,
    parse_volume_key,
    series_name,
    slice_file_name,
    volume_key,
)

__all__ = [
    'box_area_2d', 'box_iou_2d', 'box_iou_2d_pairs', 'box_iobb_2d', 'box_iobb_2d_pairs',
    'box_iou_3d', 'box_iou_3d_pairs', 'match_pairs_by_key', 'EVAL_PLUS_ONE', 'STACK_PLUS_ONE',
    'FRAMES', 'LH_FRAME', 'MMLESION_FRAME', 'check_frame', 'convert_frame', 'slice_extent',
    'Tracklet', 'as_tracklet', 'as_tracklets', 'tracklet_parts', 'tracklet_array',
    'PackedTracklets', 'pack_tracklets', 'AnnotationSet', 'VolumeInfo', 'volume_info_from_key',
    'VolumeKey', 'normalize_key', 'parse_dl_file_name', 'parse_volume_key', 'series_name',
    'slice_file_name', 'volume_key'
]
