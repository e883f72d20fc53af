"""Model components: the MSCN lesion proposal generator (2.5D DenseNet backbone with 3D context
fusion, FPN-style upsampling neck, CenterNet head with HNSL, the CenterNet detector with
CenterNet's flip test), the Faster R-CNN 2.5D baseline's parts (the box head and RoI samplers of the
missing-label strategies) and the lesion proposal classifiers (multi-view, axial and 3D LPC, their
3D ResNet and data preprocessor).  Importing registers them in ``mmdet.registry.MODELS`` and
``TASK_UTILS``."""
from .backbones import DenseNet25D, ResNet3D
from .classifiers import LPC3D, AxialLPC, MultiViewLPC
from .data_preprocessors import LPCDataPreprocessor
from .dense_heads import CenterNetHNSLHead
from .detectors import LesionCenterNet
from .necks import LesionFPNUpsample
from .roi_heads import NegativeWeightedBBoxHead
from .task_modules import OverlapBandWeightSampler, OverlapSoftSampler

__all__ = [
    'DenseNet25D', 'LesionFPNUpsample', 'CenterNetHNSLHead', 'LesionCenterNet', 'ResNet3D',
    'MultiViewLPC', 'AxialLPC', 'LPC3D', 'LPCDataPreprocessor', 'NegativeWeightedBBoxHead',
    'OverlapSoftSampler', 'OverlapBandWeightSampler'
]
