"""Iterative lesion harvesting (paper Sec. III; docs/method.md#harvesting): the selection rules,
the training annotation files of each round, Table I, and the resumable round runner."""
from .annotations import ProposalBox, add_proposal_boxes, merge_complete_marks
from .round import STEPS, HarvestRunner, RoundFrozenError, round_dir
from .rules import (
    HarvestPools,
    harvest_threshold,
    lesion_scores,
    select_hard_negatives,
    select_positives,
    split_pools,
)
from .settings import HarvestSets, HarvestSettings, load_harvest_sets
from .state import RoundState
from .table1 import HarvestCandidates, HarvestCurve, harvest_curve, mark_hits, recall_at_precisions

__all__ = [
    'ProposalBox', 'add_proposal_boxes', 'merge_complete_marks', 'STEPS', 'HarvestRunner',
    'RoundFrozenError', 'round_dir', 'HarvestPools', 'harvest_threshold', 'lesion_scores',
    'select_hard_negatives', 'select_positives', 'split_pools', 'HarvestSets',
    'HarvestSettings', 'load_harvest_sets', 'RoundState', 'HarvestCandidates', 'HarvestCurve',
    'harvest_curve', 'mark_hits', 'recall_at_precisions'
]
