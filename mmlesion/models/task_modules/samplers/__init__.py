from .negative_weighted_sampler import NegativeWeightedSampler
from .overlap_band_sampler import OverlapBandWeightSampler, overlap_band_weight
from .overlap_soft_sampler import OverlapSoftSampler, soft_sampling_weight

__all__ = ['NegativeWeightedSampler', 'OverlapSoftSampler', 'soft_sampling_weight',
           'OverlapBandWeightSampler', 'overlap_band_weight']
