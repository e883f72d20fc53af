"""Data samplers, registered in ``mmdet.registry.DATA_SAMPLERS``."""
from .proposal_balanced_sampler import ProposalBalancedSampler

__all__ = ['ProposalBalancedSampler']
