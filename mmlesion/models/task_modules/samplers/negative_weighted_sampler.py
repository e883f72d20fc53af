"""A random RoI sampler that also gives every sampled negative a loss weight from its overlap.

The second stage of Faster R-CNN samples RoIs per image (mmdet's ``RandomSampler``); the
missing-label strategies of the paper's Table III (docs/method.md#missing-labels) then change how
much each *negative* RoI counts in the classification loss, as a function of its maximum IoU with
the image's ground-truth boxes.  This class does the sampling exactly as ``RandomSampler`` and
attaches the weights to the sampling result; :class:`~mmlesion.models.NegativeWeightedBBoxHead`
multiplies them into the classification ``label_weights``.  Subclasses define the weighting.
"""
from abc import abstractmethod

from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import RandomSampler, SamplingResult


class NegativeWeightedSampler(RandomSampler):
    """``RandomSampler`` whose results carry ``neg_weights`` (one per sampled negative).

    Args: as mmdet's ``RandomSampler`` (``num``, ``pos_fraction``, ``neg_pos_ub``,
    ``add_gt_as_proposals``).  Positives keep weight 1 (the bbox head's ``pos_weight``).
    """

    @abstractmethod
    def negative_weights(self, max_overlaps: Tensor) -> Tensor:
        """Loss weights of negatives with these maximum IoUs (``(n,)`` in [0, 1) -> ``(n,)``)."""

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        """``RandomSampler.sample``, then ``result.neg_weights``: ``(num_neg,)`` float, in the
        order of ``result.neg_inds`` (the bbox head's target order)."""
        result = super().sample(assign_result, pred_instances, gt_instances, **kwargs)
        # neg_inds index the priors with the ground truth prepended (add_gt_as_proposals), and
        # assign_result.max_overlaps was extended to match by the sampler above
        overlaps = assign_result.max_overlaps[result.neg_inds].float().clamp(min=0)
        result.neg_weights = self.negative_weights(overlaps)
        return result
