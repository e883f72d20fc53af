from .densenet25d import DenseNet25D
from .resnet3d import ResNet3D

__all__ = ['DenseNet25D', 'ResNet3D']
