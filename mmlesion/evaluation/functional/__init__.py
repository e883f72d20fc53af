"""Pure-numpy metric cores (no MMEngine): P3D, 2D RECIST FROC, 3D IoU FROC, stratification.

Box overlaps and tracklet packing live in :mod:`mmlesion.structures`."""
from .froc import (
    P3D_FP_POINTS,
    RECIST_FP_POINTS,
    FROCResult,
    froc_from_hits,
    interp_sensitivity,
    voc_ap,
)
from .iou3d import clip_boxes3d_z, evaluate_iou_3d, tracklet_boxes3d
from .p3d import PackedGT2D, evaluate_p3d, p3d_overlaps, pack_gt_2d
from .recist2d import evaluate_recist_2d
from .stratify import (
    DEFAULT_SIZE_EDGES_MM,
    LESION_TYPES,
    StratumSensitivity,
    align_gt_values,
    box_long_side,
    sensitivity_by_stratum,
    size_strata,
)

__all__ = [
    'P3D_FP_POINTS', 'RECIST_FP_POINTS', 'FROCResult', 'froc_from_hits', 'interp_sensitivity',
    'voc_ap', 'evaluate_p3d', 'p3d_overlaps', 'pack_gt_2d', 'PackedGT2D', 'evaluate_recist_2d',
    'evaluate_iou_3d', 'tracklet_boxes3d', 'clip_boxes3d_z', 'sensitivity_by_stratum',
    'StratumSensitivity', 'size_strata', 'box_long_side', 'align_gt_values',
    'DEFAULT_SIZE_EDGES_MM', 'LESION_TYPES'
]
