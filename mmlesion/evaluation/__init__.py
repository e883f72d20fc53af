from .detection_io import (convert_detections_frame, load_lh_annotation_2d, load_lh_boxes_3d,
                           load_lh_detections, save_lh_detections)
from .functional import *  # noqa: F401,F403
from .metrics import (AnnotationSet, IoU3DMetric, P3DMetric, Recist2DMetric,  # noqa: E402
                      load_annotation_set)
