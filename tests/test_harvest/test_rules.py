"""The selection rules of a harvest round on hand-built proposals."""
import numpy as np
import pytest

from mmlesion.harvest.rules import (
    harvest_threshold,
    lesion_scores,
    select_hard_negatives,
    select_positives,
    split_pools,
)
from mmlesion.structures.proposals import Proposal
from mmlesion.structures.tracklet import as_tracklet

VM = '000001_01_01_001-010'
VH = '000002_01_01_001-010'
VH2 = '000003_01_01_001-010'


def prop(key, index, s_g, label, s_c=None, z=(3, 4, 5)):
    rows = [(zz, [10.0, 10.0, 20.0, 20.0, s_g if zz == z[len(z) // 2] else s_g / 2])
            for zz in z]
    return Proposal(key=key, index=index, tracklet=as_tracklet(rows), label=label, s_c=s_c)


def test_split_pools_by_volume_and_label():
    props = [prop(VM, 0, 0.9, 1), prop(VM, 1, 0.5, 0), prop(VH, 0, 0.8, 1), prop(VH, 1, 0.3, -1)]
    pools = split_pools(props, [VM])
    assert [(p.key, p.index) for p in pools.m_r] == [(VM, 0)]
    assert [(p.key, p.index) for p in pools.m_neg] == [(VM, 1)]
    assert [(p.key, p.index) for p in pools.h_r] == [(VH, 0)]
    assert [(p.key, p.index) for p in pools.h_rest] == [(VH, 1)]
    assert pools.counts() == dict(P_M_R=1, P_M_neg=1, P_H_R=1, P_H_rest=1)


def test_split_pools_rejects_labels_against_the_rule():
    with pytest.raises(ValueError, match='V_M is unlabelled'):
        split_pools([prop(VM, 0, 0.9, -1)], [VM])
    with pytest.raises(ValueError, match='V_H is labelled 0'):
        split_pools([prop(VH, 0, 0.9, 0)], [VM])


def test_lesion_score_is_the_product_and_needs_s_c():
    p = prop(VH, 0, 0.8, -1, s_c=0.5)
    assert lesion_scores([p])[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match='no LPC score'):
        lesion_scores([prop(VH, 1, 0.8, -1)])


def test_threshold_reaches_the_precision_on_v_m():
    # scores s_g * s_c (s_c = 1): 0.9 (pos) 0.8 (pos) 0.7 (neg) 0.6 (pos) 0.5 (neg)
    m_r = [prop(VM, i, s, 1, s_c=1.0) for i, s in enumerate((0.9, 0.8, 0.6))]
    m_neg = [prop(VM, 10 + i, s, 0, s_c=1.0) for i, s in enumerate((0.7, 0.5))]
    # precision at t: 0.9 -> 1, 0.8 -> 1, 0.7 -> 2/3, 0.6 -> 3/4, 0.5 -> 3/5
    assert harvest_threshold(m_r, m_neg, 0.95) == pytest.approx(0.8)
    assert harvest_threshold(m_r, m_neg, 0.75) == pytest.approx(0.6)
    assert harvest_threshold(m_r, m_neg, 0.6) == pytest.approx(0.5)
    # no threshold reaches it: the best proposal is a negative
    assert harvest_threshold(m_r[:1], [prop(VM, 20, 0.95, 0, s_c=1.0)], 0.95) is None
    assert harvest_threshold([], m_neg, 0.95) is None


def test_positives_and_hard_negatives():
    rest = [prop(VH, 0, 0.9, -1, s_c=0.9),  # s 0.81: harvested
            prop(VH, 1, 0.8, -1, s_c=0.1),  # s 0.08, s_g >= 0.5: hard negative
            prop(VH, 2, 0.3, -1, s_c=0.9)]  # s 0.27: top-k of its volume
    rest += [prop(VH2, i, s, -1, s_c=0.0) for i, s in enumerate((0.4, 0.35, 0.3, 0.25, 0.2,
                                                                 0.15, 0.12))]
    pos = select_positives(rest, 0.5)
    assert [(p.key, p.index) for p in pos] == [(VH, 0)]
    assert select_positives(rest, None) == []
    neg = select_hard_negatives(rest, pos, s_g_thr=0.5, top_k=5)
    # VH: 1 (s_g 0.8) and 2 (top 5 of what is left); VH2: its 5 highest s_g of 7
    assert [(p.key, p.index) for p in neg] == [(VH, 1), (VH, 2)] + [(VH2, i) for i in range(5)]
    # s_g >= 0.5 are taken beyond the top k
    neg1 = select_hard_negatives(rest, pos, s_g_thr=0.5, top_k=0)
    assert [(p.key, p.index) for p in neg1] == [(VH, 1)]
    # the harvested never become hard negatives
    assert (VH, 0) not in {(p.key, p.index) for p in select_hard_negatives(rest, pos, 0.0, 9)}
    assert np.isfinite(lesion_scores(neg)).all()
