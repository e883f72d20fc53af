"""MSCN model components: 2.5D DenseNet backbone with 3D context fusion,
FPN-style upsampling neck, CenterNet head with HNSL, and the CenterNet detector
with CenterNet's flip test. Importing registers them in
``mmdet.registry.MODELS``."""
from .backbones import DenseNet25D
from .dense_heads import CenterNetHNSLHead
from .detectors import LesionCenterNet
from .necks import LesionFPNUpsample

__all__ = ['DenseNet25D', 'LesionFPNUpsample', 'CenterNetHNSLHead', 'LesionCenterNet']
