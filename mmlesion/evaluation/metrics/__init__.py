"""MMEngine metrics (registered in ``mmdet.registry.METRICS``): thin adapters over the numpy cores
of :mod:`mmlesion.evaluation.functional`."""
from .iou3d_metric import IoU3DMetric
from .lpc_metric import LPCMetric, lpc_metric_table
from .p3d_metric import P3DMetric, VolumeFROCMetric, evaluate_p3d_on_set
from .recist2d_metric import Recist2DMetric
from .utils import compress_curve, dump_froc_json, froc_table, froc_to_dict

__all__ = [
    'P3DMetric', 'IoU3DMetric', 'Recist2DMetric', 'VolumeFROCMetric', 'evaluate_p3d_on_set',
    'compress_curve', 'dump_froc_json', 'froc_table', 'froc_to_dict', 'LPCMetric',
    'lpc_metric_table'
]
