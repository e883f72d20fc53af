"""ProposalBalancedSampler: the share of lesion proposals per epoch, cycling, seeding, ranks."""
from collections import Counter

import pytest

from mmlesion.datasets.samplers import ProposalBalancedSampler


class Labelled:
    """A stand-in dataset: ``get_cat_ids`` as ProposalPatchDataset answers it."""

    def __init__(self, labels):
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def get_cat_ids(self, i):
        return [0] if self.labels[i] == 1 else []


def test_epoch_has_the_share_of_positives_each_cycled():
    ds = Labelled([1] * 3 + [0] * 97)
    s = ProposalBalancedSampler(ds, pos_fraction=0.5, seed=7)
    idx = list(s)
    assert len(idx) == len(s) == 100
    assert sum(ds.labels[i] for i in idx) == 50
    counts = Counter(i for i in idx if ds.labels[i] == 1)
    # 50 draws of 3 positives, one permutation after another: 16 or 17 each
    assert sorted(counts.values()) == [16, 17, 17]
    assert len({i for i in idx if ds.labels[i] == 0}) == 50  # no negative twice in one pass
    assert list(ProposalBalancedSampler(ds, 0.5, seed=7)) == idx  # seeded
    s.set_epoch(1)
    assert list(s) != idx


def test_ranks_split_one_epoch(monkeypatch):
    import mmlesion.datasets.samplers.proposal_balanced_sampler as mod
    ds = Labelled([1] * 5 + [0] * 20)
    parts = []
    for rank in range(2):
        monkeypatch.setattr(mod, 'get_dist_info', lambda rank=rank: (rank, 2))
        parts.append(list(ProposalBalancedSampler(ds, pos_fraction=0.2, seed=1)))
    assert len(parts[0]) == len(parts[1]) == 13
    monkeypatch.setattr(mod, 'get_dist_info', lambda: (0, 1))
    whole = ProposalBalancedSampler(ds, pos_fraction=0.2, seed=1)
    whole.total_size = whole.num_samples = 26
    assert parts[0] + parts[1] == list(whole)


def test_bad_arguments():
    with pytest.raises(ValueError, match='pos_fraction'):
        ProposalBalancedSampler(Labelled([1, 0]), pos_fraction=1.0, seed=0)
    with pytest.raises(ValueError, match='lesion and non-lesion'):
        ProposalBalancedSampler(Labelled([0, 0]), seed=0)
