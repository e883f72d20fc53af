from .densenet25d import DenseNet25D

__all__ = ['DenseNet25D']
