"""The selection rules of one harvest round (docs/method.md#harvesting, steps 3 and 5), plain
numpy on labelled, scored proposals.

Pools of a round's proposals (:class:`~mmlesion.structures.proposals.ProposalSet`, labelled by
the P3D hit rule of :mod:`mmlesion.evaluation.functional.proposal_labels`):

* ``P_M^R``: proposals of the completely annotated volumes V_M that hit a lesion (label 1);
* ``P_M^-``: the other V_M proposals (label 0);
* ``P_H^R``: proposals of V_H that hit an original RECIST mark (label 1);
* the rest of V_H (label -1): the candidates a round harvests from.

From the rest, scored with the lesion score ``s = s_g * s_c`` (paper Eq. 2):

* ``P_H^+`` (harvested positives): ``s >= t``, ``t`` the lowest threshold whose precision on
  V_M's proposals (P_M^R vs P_M^-, scored the same way) is ``>= 95%``; or, with a held-out
  V_M^cal (*ours*), on V_M^cal's harvest candidates judged by its complete labels
  (:func:`holdout_threshold`);
* ``P_H^-`` (hard negatives), from what is not harvested: every proposal with ``s_g >= 0.5``,
  plus, per sub-volume, up to 5 proposals of the highest ``s_g``.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from mmlesion.evaluation.functional.pr_curves import threshold_at_precision
from mmlesion.structures.proposals import (
    LABEL_NEGATIVE,
    LABEL_POSITIVE,
    LABEL_UNKNOWN,
    Proposal,
)

__all__ = ['HarvestPools', 'split_pools', 'lesion_scores', 'harvest_threshold',
           'holdout_threshold', 'select_positives', 'select_hard_negatives', 'PRECISION_TARGET',
           'HARD_NEGATIVE_S_G', 'HARD_NEGATIVE_TOP_K']

PRECISION_TARGET = 0.95  # paper Sec. III-D: "a precision above 95% on ... V_M"
HARD_NEGATIVE_S_G = 0.5  # "any whose detection scores, s_g, were >= 0.5"
HARD_NEGATIVE_TOP_K = 5  # "from each subvolume ... up to five proposals with the top scores"


class HarvestPools(NamedTuple):
    """A round's proposals by pool (each list in the proposal set's order)."""
    m_r: List[Proposal]  # P_M^R
    m_neg: List[Proposal]  # P_M^-
    h_r: List[Proposal]  # P_H^R
    h_rest: List[Proposal]  # V_H proposals hitting no RECIST mark: the harvest candidates

    def counts(self) -> Dict[str, int]:
        return dict(P_M_R=len(self.m_r), P_M_neg=len(self.m_neg), P_H_R=len(self.h_r),
                    P_H_rest=len(self.h_rest))


def split_pools(proposals: Sequence[Proposal], v_m_keys: Sequence[str]) -> HarvestPools:
    """Split labelled proposals into P_M^R, P_M^-, P_H^R and the rest of V_H.

    Args:
        proposals: every proposal of V_M and V_H, labelled (V_M complete: 1/0; V_H against the
            RECIST marks: 1/-1).
        v_m_keys: the completely annotated volumes.

    Raises:
        ValueError: a V_M proposal is unlabelled (-1) or a V_H proposal is labelled 0 (the
            labels do not follow the round's rule), naming the proposal.
    """
    v_m = set(v_m_keys)
    pools = HarvestPools([], [], [], [])
    for p in proposals:
        if p.key in v_m:
            if p.label == LABEL_UNKNOWN:
                raise ValueError(f'proposal {p.key} #{p.index} of V_M is unlabelled: V_M must '
                                 'be labelled against its complete annotation')
            (pools.m_r if p.label == LABEL_POSITIVE else pools.m_neg).append(p)
        else:
            if p.label == LABEL_NEGATIVE:
                raise ValueError(f'proposal {p.key} #{p.index} of V_H is labelled 0: V_H is '
                                 'labelled against RECIST marks only (hit 1, else -1)')
            (pools.h_r if p.label == LABEL_POSITIVE else pools.h_rest).append(p)
    return pools


def lesion_scores(proposals: Sequence[Proposal]) -> np.ndarray:
    """``(n,)`` float64 ``s = s_g * s_c`` (paper Eq. 2).

    Raises:
        ValueError: a proposal has no ``s_c`` (the LPC has not scored it).
    """
    missing = [p for p in proposals if p.s_c is None]
    if missing:
        p = missing[0]
        raise ValueError(f'{len(missing)} proposal(s) have no LPC score s_c, e.g. {p.key} '
                         f'#{p.index}')
    return np.asarray([p.s_g * p.s_c for p in proposals], dtype=np.float64)


def harvest_threshold(m_r: Sequence[Proposal], m_neg: Sequence[Proposal],
                      precision: float = PRECISION_TARGET) -> Optional[float]:
    """The lowest lesion-score threshold (``s >= t``) with precision ``>= precision`` on V_M.

    Returns:
        ``t``, or None when no threshold reaches the precision (nothing is harvested) or V_M
        has no positive proposal.
    """
    # the same rule as on held-out candidates, V_M's complete labels judging its proposals
    return holdout_threshold(list(m_r) + list(m_neg), [True] * len(m_r) + [False] * len(m_neg),
                             precision)


def holdout_threshold(candidates: Sequence[Proposal], correct: Sequence[bool],
                      precision: float = PRECISION_TARGET) -> Optional[float]:
    """The lowest lesion-score threshold with precision ``>= precision`` on held-out harvest
    candidates (docs/method.md#harvest-calibration).

    Args:
        candidates: the proposals of V_M^cal hitting no RECIST mark, scored (``s_g``, ``s_c``):
            the same population a round harvests from in V_H.
        correct: ``(n,)`` whether each hits a lesion of V_M^cal's complete labels (P3D rule).

    Returns:
        ``t``, or None when no candidate is correct or no threshold reaches the precision.
    """
    correct = np.asarray(correct, dtype=bool).ravel()
    if len(candidates) != correct.size:
        raise ValueError(f'{len(candidates)} candidates but {correct.size} correctness flags')
    if not correct.any():
        return None
    return threshold_at_precision(lesion_scores(candidates), correct.astype(np.int64), precision)


def select_positives(rest: Sequence[Proposal], threshold: Optional[float]) -> List[Proposal]:
    """P_H^+: the candidates with ``s_g * s_c >= threshold`` (none when it is None)."""
    if threshold is None or not rest:
        return []
    s = lesion_scores(rest)
    return [p for p, keep in zip(rest, s >= threshold) if keep]


def select_hard_negatives(rest: Sequence[Proposal], harvested: Sequence[Proposal],
                          s_g_thr: float = HARD_NEGATIVE_S_G,
                          top_k: int = HARD_NEGATIVE_TOP_K) -> List[Proposal]:
    """P_H^-: from the candidates not harvested, every proposal with ``s_g >= s_g_thr`` and,
    per sub-volume, the ``top_k`` proposals of the highest ``s_g`` (ties: scan order).

    Returns:
        The hard negatives in the candidates' order.
    """
    taken = {(p.key, p.index) for p in harvested}
    left = [p for p in rest if (p.key, p.index) not in taken]
    chosen = set()
    by_volume: Dict[str, List[Proposal]] = {}
    for p in left:
        by_volume.setdefault(p.key, []).append(p)
        if p.s_g >= s_g_thr:
            chosen.add((p.key, p.index))
    for props in by_volume.values():
        order = sorted(range(len(props)), key=lambda i: -props[i].s_g)  # stable: scan order
        chosen.update((props[i].key, props[i].index) for i in order[:max(int(top_k), 0)])
    return [p for p in left if (p.key, p.index) in chosen]
