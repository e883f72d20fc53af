"""MMEngine adapter of the 3D IoU FROC: tracklets' enclosing 3D boxes against 3D ground truth
(``3D-Box.pkl``, the LENS release, or ``bbox_3d`` of an imported JSON)."""
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmdet.registry import METRICS
from mmlesion.evaluation.functional.froc import P3D_FP_POINTS, FROCResult
from mmlesion.evaluation.functional.iou3d import evaluate_iou_3d, tracklet_boxes3d
from mmlesion.structures.volume import AnnotationSet

from .p3d_metric import VolumeFROCMetric

__all__ = ['IoU3DMetric']


@METRICS.register_module()
class IoU3DMetric(VolumeFROCMetric):
    """FROC / AP by 3D IoU >= ``iou_thr`` (0.33, the paper's choice) per volume
    (docs/method.md#eval-iou3d).

    A tracklet's 3D box is the union of its slice boxes in x/y and ``[z_first - 0.5,
    z_last + 0.5]`` in z; extents are continuous (no ``+1``).  Ground-truth conventions: see
    :mod:`mmlesion.evaluation.annotation_set`.  FPs per volume as P3D.

    Returns ``{'iou3d/AP': .., 'iou3d/sens@0.125': .., ...}``.  Arguments: see
    :class:`~mmlesion.evaluation.metrics.p3d_metric.VolumeFROCMetric` (``iou_thr`` defaults to
    0.33 here).
    """
    default_prefix = 'iou3d'
    gt_field = 'gt_boxes_3d'

    def __init__(self, ann_file: Optional[str] = None, iou_thr: float = 0.33,
                 fp_points: Sequence[float] = P3D_FP_POINTS, **kwargs) -> None:
        super().__init__(ann_file=ann_file, iou_thr=iou_thr, fp_points=fp_points, **kwargs)

    def _gt_from_set(self, ann: AnnotationSet) -> Dict[str, np.ndarray]:
        if ann.boxes_3d is None:
            raise ValueError(f'IoU3DMetric: {ann.path} holds no 3D boxes (expected 3D-Box.pkl, '
                             'the LENS release, or a JSON whose annotations carry "bbox_3d")')
        return ann.boxes_3d

    def evaluate_detections(self, gt: Dict[str, np.ndarray],
                            detections: Dict[str, List[np.ndarray]]) -> FROCResult:
        boxes3d = tracklet_boxes3d(detections, z_convention='continuous')
        return evaluate_iou_3d(gt, boxes3d, iou_thr=self.iou_thr, fp_points=self.fp_points,
                               interp=self.interp, plus_one=False)
