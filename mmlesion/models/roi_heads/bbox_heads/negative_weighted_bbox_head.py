"""mmdet's two-FC R-CNN box head, with per-negative classification weights from the sampler.

mmdet's ``BBoxHead.get_targets`` gives every sampled negative RoI a classification weight of 1.
The missing-label samplers (:class:`~mmlesion.models.task_modules.OverlapSoftSampler`, OBSS;
:class:`~mmlesion.models.task_modules.OverlapBandWeightSampler`, M-OBHS) attach a weight to each
negative (``SamplingResult.neg_weights``); this head multiplies them into ``label_weights``.
With mmdet's own samplers (no ``neg_weights``) it is exactly ``Shared2FCBBoxHead``, so every
Faster R-CNN config of ours uses it and the strategy is chosen by the sampler alone.

The classification loss (mmdet's ``CrossEntropyLoss``, ``reduction='mean'``) is averaged over the
RoIs with non-zero weight: ``sum_i w_i CE_i / #{i: w_i > 0}``; the weights rescale each RoI's
gradient, they do not renormalise the batch (as in Soft Sampling).  Box regression is unchanged
(positives only).
"""
from typing import List

import torch
from mmengine.config import ConfigDict

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS


@MODELS.register_module()
class NegativeWeightedBBoxHead(Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` whose negative RoIs' classification weights are the sampler's
    ``neg_weights`` where the sampling result has them (arguments as ``Shared2FCBBoxHead``)."""

    def get_targets(self, sampling_results: List[SamplingResult], rcnn_train_cfg: ConfigDict,
                    concat: bool = True) -> tuple:
        """As ``BBoxHead.get_targets``; ``label_weights[-num_neg:]`` of each image are
        multiplied by its ``neg_weights`` (``(num_neg,)``; negatives come last, in
        ``neg_inds`` order)."""
        labels, label_weights, bbox_targets, bbox_weights = super().get_targets(
            sampling_results, rcnn_train_cfg, concat=False)
        label_weights = list(label_weights)
        for i, res in enumerate(sampling_results):
            weights = getattr(res, 'neg_weights', None)
            if weights is None:
                continue
            num_neg = res.neg_priors.shape[0]
            if weights.numel() != num_neg:
                raise ValueError(f'image {i}: the sampler gave {weights.numel()} negative '
                                 f'weights for {num_neg} sampled negatives')
            if num_neg:
                label_weights[i] = label_weights[i].clone()
                label_weights[i][-num_neg:] *= weights.to(label_weights[i])
        if concat:
            return (torch.cat(labels, 0), torch.cat(label_weights, 0),
                    torch.cat(bbox_targets, 0), torch.cat(bbox_weights, 0))
        return labels, label_weights, bbox_targets, bbox_weights
