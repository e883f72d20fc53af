"""Modified overlap-based hard sampling (M-OBHS; Cai et al., Lesion Harvester, Sec. IV-F).

OBHS (Ren et al.) trains the second stage on negatives whose maximum IoU with a ground truth is
in [0.1, 0.5) only, discarding the background below 0.1 -- mmdet's own ``MaxIoUAssigner`` with
``neg_iou_thr=(0.1, 0.5)`` does exactly that, so OBHS needs no new component.  M-OBHS keeps all
background but weighs those overlapping negatives twice as much as positives and plain
background.
"""
from typing import Tuple

from torch import Tensor

from mmdet.registry import TASK_UTILS

from .negative_weighted_sampler import NegativeWeightedSampler


def overlap_band_weight(max_iou: Tensor, band: Tuple[float, float] = (0.1, 0.5),
                        band_weight: float = 2.0) -> Tensor:
    """``band_weight`` for negatives with ``band[0] <= max_iou < band[1]``, else 1.

    Args:
        max_iou: ``(n,)`` maximum IoU of each negative RoI with the ground truth.
        band: the half-open IoU interval of the overlapping ("hard") negatives.
        band_weight: their weight (the paper: 2).
    Returns:
        ``(n,)`` float weights.
    """
    lo, hi = (float(v) for v in band)
    if not 0.0 <= lo < hi or band_weight < 0:
        raise ValueError(f'need 0 <= band[0] < band[1] and band_weight >= 0; got band={band}, '
                         f'band_weight={band_weight}')
    x = max_iou.float()
    weights = x.new_ones(x.shape)
    weights[(x >= lo) & (x < hi)] = float(band_weight)
    return weights


@TASK_UTILS.register_module()
class OverlapBandWeightSampler(NegativeWeightedSampler):
    """M-OBHS: mmdet's random RoI sampling; sampled negatives with maximum IoU in ``band``
    weigh ``band_weight``, the rest of the background and the positives 1.

    Use with mmdet's ``MaxIoUAssigner`` (``neg_iou_thr=0.5``: all background kept) and
    :class:`~mmlesion.models.NegativeWeightedBBoxHead`.

    Args:
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals: as mmdet's ``RandomSampler``.
        band: IoU interval of the overlapping negatives ((0.1, 0.5), OBHS's).
        band_weight: their weight (2, the paper's).
    """

    def __init__(self, num: int, pos_fraction: float, band: Tuple[float, float] = (0.1, 0.5),
                 band_weight: float = 2.0, **kwargs) -> None:
        super().__init__(num=num, pos_fraction=pos_fraction, **kwargs)
        self.band = tuple(float(v) for v in band)
        self.band_weight = float(band_weight)
        overlap_band_weight(Tensor([0.0]), self.band, self.band_weight)  # checks the settings

    def negative_weights(self, max_overlaps: Tensor) -> Tensor:
        return overlap_band_weight(max_overlaps, self.band, self.band_weight)
