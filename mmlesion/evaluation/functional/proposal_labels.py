"""Labels of 3D proposals from 2D ground truth, by the P3D hit rule (plain numpy).

A proposal (tracklet) hits a ground-truth box when it has a box on the ground truth's slice whose
``+1`` IoU with it is >= 0.5 -- exactly the rule of the P3D metric, computed by the same function,
:func:`~mmlesion.evaluation.functional.p3d_overlaps` (docs/method.md#eval-p3d).  The paper splits
proposals this way into P_M^R / P_M^- (completely annotated volumes V_M) and P_H^R (volumes with
RECIST marks only, V_H; Sec. III-C, docs/method.md#harvesting):

* against a **complete** annotation (every lesion marked): hit -> 1, miss -> 0;
* against **RECIST marks only**: hit -> 1, miss -> -1 (unknown: the proposal may be an unmarked
  lesion).

Frames: ground truth and tracklets in mmlesion's frame (absolute z, 0-based x/y).
"""
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np

from mmlesion.structures.conventions import EVAL_PLUS_ONE
from mmlesion.structures.proposals import (
    LABEL_NEGATIVE,
    LABEL_POSITIVE,
    LABEL_SOURCES,
    LABEL_UNKNOWN,
    ProposalSet,
)
from mmlesion.structures.volume import AnnotationSet

from .p3d import p3d_overlaps

__all__ = ['ProposalLabels', 'label_proposals', 'label_proposal_set', 'P3D_IOU_THR']

P3D_IOU_THR = 0.5


class ProposalLabels(NamedTuple):
    """Labels of one volume's proposals.

    Attributes:
        labels: ``(n,)`` int64: 1 hit, 0 miss (complete), -1 miss (RECIST only).
        gt_index: ``(n,)`` int64: the ground truth with the largest P3D IoU among those hit,
            -1 when none is hit.
        iou: ``(n,)`` float64: that IoU (the largest P3D IoU with any ground truth when none is
            hit; 0 without ground truth).
    """
    labels: np.ndarray
    gt_index: np.ndarray
    iou: np.ndarray


def label_proposals(gt_boxes: Any, tracklets: Sequence[Any], complete: bool, *,
                    iou_thr: float = P3D_IOU_THR,
                    plus_one: bool = EVAL_PLUS_ONE) -> ProposalLabels:
    """Label the proposals of one volume by the P3D hit rule.

    Args:
        gt_boxes: the volume's ground truth, e.g. an ``(m, 5)`` array ``[z, x1, y1, x2, y2]``
            (any layout of :func:`~mmlesion.evaluation.functional.pack_gt_2d`).
        tracklets: the volume's proposals (any tracklet layout).
        complete: True when ``gt_boxes`` holds every lesion of the volume (a miss is a
            negative, 0); False for RECIST marks only (a miss is unknown, -1).
        iou_thr: P3D IoU threshold (0.5).
        plus_one: inclusive-pixel IoU (the reference's convention).

    Returns:
        :class:`ProposalLabels`.
    """
    n = len(tracklets)
    if n == 0:
        e = np.zeros(0, np.int64)
        return ProposalLabels(e, e.copy(), np.zeros(0))
    ov = p3d_overlaps(gt_boxes, tracklets, plus_one=plus_one)
    if ov.shape[1] == 0:
        ov = np.zeros((n, 1))
        best = np.full(n, -1, dtype=np.int64)
    else:
        best = np.argmax(ov, axis=1).astype(np.int64)
    iou = ov[np.arange(n), np.maximum(best, 0)]
    hit = iou >= iou_thr
    miss = LABEL_NEGATIVE if complete else LABEL_UNKNOWN
    labels = np.where(hit, LABEL_POSITIVE, miss).astype(np.int64)
    return ProposalLabels(labels, np.where(hit, best, -1).astype(np.int64), iou)


def label_proposal_set(proposals: ProposalSet, annotations: AnnotationSet, source: str, *,
                       iou_thr: float = P3D_IOU_THR, plus_one: bool = EVAL_PLUS_ONE,
                       keys: Optional[Sequence[str]] = None) -> Dict[str, int]:
    """Label the proposals of a set in place against an annotation set.

    Args:
        proposals: the proposals; only volumes that are in ``annotations`` (and in ``keys``
            when given) are labelled, the others keep their labels.
        annotations: ground truth (:func:`~mmlesion.evaluation.load_annotation_set`).
        source: ``'complete'`` (every lesion of each volume is marked: misses are 0) or
            ``'recist'`` (RECIST marks only: misses are -1).  With ``'complete'``, volumes the
            file flags ``complete: false`` (mmlesion JSON) are labelled as ``'recist'``.
        iou_thr, plus_one: the P3D hit rule.
        keys: restrict labelling to these volumes.

    Returns:
        counts: ``volumes`` labelled, ``positive``, ``negative``, ``unknown`` proposals labelled,
        ``recist_only_volumes`` (complete-flagged files: volumes flagged incomplete).
    """
    if source not in LABEL_SOURCES:
        raise ValueError(f'source must be one of {LABEL_SOURCES}, got {source!r}')
    wanted = None if keys is None else set(keys)
    counts = dict(volumes=0, positive=0, negative=0, unknown=0, recist_only_volumes=0)
    for key, props in proposals.by_volume().items():
        if key not in annotations.volumes or (wanted is not None and key not in wanted):
            continue
        vol_source = source
        if source == 'complete' and annotations.volumes[key].complete is False:
            vol_source = 'recist'
            counts['recist_only_volumes'] += 1
        counts['volumes'] += 1
        if not props:
            continue
        res = label_proposals(annotations.boxes_2d[key], [p.tracklet for p in props],
                              vol_source == 'complete', iou_thr=iou_thr, plus_one=plus_one)
        for p, label, gi in zip(props, res.labels, res.gt_index):
            p.label, p.gt_index, p.label_source = int(label), int(gi), vol_source
        counts['positive'] += int((res.labels == LABEL_POSITIVE).sum())
        counts['negative'] += int((res.labels == LABEL_NEGATIVE).sum())
        counts['unknown'] += int((res.labels == LABEL_UNKNOWN).sum())
    return counts
