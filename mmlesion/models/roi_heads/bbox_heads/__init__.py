from .negative_weighted_bbox_head import NegativeWeightedBBoxHead

__all__ = ['NegativeWeightedBBoxHead']
