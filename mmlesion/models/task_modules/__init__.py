"""Task utilities registered in ``mmdet.registry.TASK_UTILS``: the second-stage RoI samplers of
the missing-label strategies (docs/method.md#missing-labels)."""
from .samplers import (
                       NegativeWeightedSampler,
                       OverlapBandWeightSampler,
                       OverlapSoftSampler,
                       overlap_band_weight,
                       soft_sampling_weight,
)

__all__ = ['NegativeWeightedSampler', 'OverlapSoftSampler', 'soft_sampling_weight',
           'OverlapBandWeightSampler', 'overlap_band_weight']
