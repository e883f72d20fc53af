"""A sampler that draws lesion and non-lesion proposals at a fixed ratio, for LPC training."""
import math
from typing import Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmdet.registry import DATA_SAMPLERS

__all__ = ['ProposalBalancedSampler']


def _cycle(indices: List[int], count: int, g: torch.Generator) -> List[int]:
    """``count`` items of ``indices`` in fresh random orders, one permutation after another."""
    out: List[int] = []
    while len(out) < count:
        perm = torch.randperm(len(indices), generator=g).tolist()
        out.extend(indices[i] for i in perm)
    return out[:count]


@DATA_SAMPLERS.register_module()
class ProposalBalancedSampler(Sampler):
    """Epochs of ``len(dataset)`` proposals of which a fixed fraction are lesions *(ours)*.

    A scan gives a few lesion proposals for every hundred others (the demo's V_M: 186 of 6,229).
    Trained on that ratio, the LPC's probability ``s_c`` carries the prior: most lesions get a
    small ``s_c`` and the product ``s_g * s_c`` (paper Eq. 2) falls below ``s_g`` alone.  Drawing
    ``pos_fraction`` of each epoch from the positives (each cycled through fresh permutations)
    trains ``s_c`` under that prior instead (docs/results.md#lpc measures it).

    Positives are the items whose ``get_cat_ids`` is non-empty
    (:class:`~mmlesion.datasets.ProposalPatchDataset`: label 1).  Works under distributed
    training: every rank draws the same epoch from the shared seed and takes its slice.

    Args:
        dataset: the training proposals.
        pos_fraction: share of lesion proposals per epoch, in (0, 1).
        seed: shared random seed (default: synchronised across ranks).

    Raises:
        ValueError: ``pos_fraction`` outside (0, 1), or a dataset without positives or without
            negatives (nothing to balance).
    """

    def __init__(self, dataset, pos_fraction: float = 0.5, seed: Optional[int] = None) -> None:
        if not 0.0 < float(pos_fraction) < 1.0:
            raise ValueError(f'pos_fraction must be in (0, 1), got {pos_fraction}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.pos_fraction = float(pos_fraction)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        flags = np.array([bool(dataset.get_cat_ids(i)) for i in range(len(dataset))], bool)
        self.positives = np.flatnonzero(flags).tolist()
        self.negatives = np.flatnonzero(~flags).tolist()
        if not self.positives or not self.negatives:
            raise ValueError(f'ProposalBalancedSampler needs lesion and non-lesion proposals, '
                             f'got {len(self.positives)} and {len(self.negatives)}')
        self.num_samples = int(math.ceil(len(dataset) / self.world_size))
        self.total_size = self.num_samples * self.world_size

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        n_pos = int(round(self.total_size * self.pos_fraction))
        chosen = (_cycle(self.positives, n_pos, g) +
                  _cycle(self.negatives, self.total_size - n_pos, g))
        order = torch.randperm(len(chosen), generator=g).tolist()
        indices = [chosen[i] for i in order]
        start = self.num_samples * self.rank
        return iter(indices[start:start + self.num_samples])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
