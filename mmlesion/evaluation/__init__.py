"""Evaluation: annotation sets, Lesion Harvester file I/O, numpy metric cores and their MMEngine
metric adapters."""
from .annotation_set import ANN_FORMATS, load_annotation_set
from .detection_io import (
    convert_detections_frame,
    load_lh_annotation_2d,
    load_lh_boxes_3d,
    load_lh_detections,
    save_lh_detections,
)
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .metrics import IoU3DMetric, P3DMetric, Recist2DMetric, VolumeFROCMetric

__all__ = [
    'ANN_FORMATS', 'load_annotation_set', 'convert_detections_frame', 'load_lh_annotation_2d',
    'load_lh_boxes_3d', 'load_lh_detections', 'save_lh_detections', 'IoU3DMetric', 'P3DMetric',
    'Recist2DMetric', 'VolumeFROCMetric', *_functional_all
]
