from .bbox_heads import NegativeWeightedBBoxHead

__all__ = ['NegativeWeightedBBoxHead']
