"""Overlap-based soft sampling (OBSS; Wu et al., "Soft Sampling for Robust Object Detection",
BMVC 2019, arXiv:1806.06986).

Under missing annotations an unlabelled lesion is sampled as background.  Soft sampling keeps
every background RoI but re-weights its loss by its overlap ``x`` (maximum IoU with the positive
instances): near-GT hard negatives (``x`` -> 0.5) keep about full weight, far-from-GT background,
where a missed lesion may hide, weighs ``a``.  The weighting function is a Gompertz curve::

    w(x) = a + (1 - a) * exp(-b * exp(-c * x))        (negatives, x < 0.5)
    w = 1                                             (positives)

with a = 0.25, b = 50, c = 20.  Function and constants are those of the authors' reference
implementation (SNIPER-mxnet, the OpenImages ``multi_proposal_target.cu`` target layer:
``sigma1 = 0.25``, ``sigma2 = 50``, ``sigma3 = 20``; read to learn, no code copied), as the
paper's own PDF was not available to us.  So w(0) = 0.25, w(0.1) = 0.251, w(0.2) = 0.550,
w(0.3) = 0.913, w(0.4) = 0.988.  ``x`` is the true maximum IoU: that layer first kept only
overlaps > 0.5, so every negative got w(0), which its authors confirmed was a bug
(SNIPER-mxnet issue #2).
"""
import torch
from torch import Tensor

from mmdet.registry import TASK_UTILS

from .negative_weighted_sampler import NegativeWeightedSampler

# the paper's Gompertz constants (see the module docstring)
SOFT_SAMPLING_A = 0.25
SOFT_SAMPLING_B = 50.0
SOFT_SAMPLING_C = 20.0


def soft_sampling_weight(max_iou: Tensor, a: float = SOFT_SAMPLING_A, b: float = SOFT_SAMPLING_B,
                         c: float = SOFT_SAMPLING_C) -> Tensor:
    """Soft-sampling weight of negative RoIs: ``a + (1 - a) exp(-b exp(-c x))``.

    Args:
        max_iou: ``(n,)`` maximum IoU of each negative RoI with the ground truth, in [0, 1].
        a: weight of RoIs far from every ground truth (the curve's floor).
        b, c: displacement and growth rate of the Gompertz curve.

    Returns:
        ``(n,)`` weights in ``[a, 1)``, increasing with ``max_iou``.
    """
    if not 0.0 <= a <= 1.0 or b <= 0 or c <= 0:
        raise ValueError(f'soft sampling needs 0 <= a <= 1, b > 0, c > 0; got a={a}, b={b}, c={c}')
    x = max_iou.float()
    return a + (1.0 - a) * torch.exp(-b * torch.exp(-c * x))


@TASK_UTILS.register_module()
class OverlapSoftSampler(NegativeWeightedSampler):
    """OBSS: mmdet's random RoI sampling, every sampled negative weighted by
    :func:`soft_sampling_weight` of its maximum IoU with the ground truth.

    Use with mmdet's ``MaxIoUAssigner`` (all background kept: ``neg_iou_thr=0.5``) and
    :class:`~mmlesion.models.NegativeWeightedBBoxHead`.

    Args:
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals: as mmdet's ``RandomSampler``.
        a, b, c: the Gompertz constants (defaults: the paper's 0.25, 50, 20).
    """

    def __init__(self, num: int, pos_fraction: float, a: float = SOFT_SAMPLING_A,
                 b: float = SOFT_SAMPLING_B, c: float = SOFT_SAMPLING_C, **kwargs) -> None:
        super().__init__(num=num, pos_fraction=pos_fraction, **kwargs)
        soft_sampling_weight(torch.zeros(1), a, b, c)  # checks the constants
        self.a, self.b, self.c = float(a), float(b), float(c)

    def negative_weights(self, max_overlaps: Tensor) -> Tensor:
        return soft_sampling_weight(max_overlaps, self.a, self.b, self.c)
