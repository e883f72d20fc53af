"""Proposal labels by the P3D hit rule, on hand-made cases."""
import numpy as np
import pytest

from mmlesion.evaluation.functional.proposal_labels import label_proposal_set, label_proposals
from mmlesion.structures import AnnotationSet, Tracklet, VolumeInfo
from mmlesion.structures.proposals import Proposal, ProposalSet

KEY = '000001_01_01_010-020'


def trk(z, box, score=0.9):
    z = np.atleast_1d(z)
    return Tracklet(z, np.array([list(box) + [score]] * z.size, dtype=np.float64))


def test_hit_needs_the_gt_slice_and_plus_one_iou_half():
    gt = np.array([[15, 0, 0, 10, 10]], dtype=np.float64)  # (z, x1, y1, x2, y2)
    # [0, 0, 7, 7] on slice 15: IoU 0.49 continuous, 64/121 = 0.53 with +1 -> a hit
    # the same box on slices 13-14 only: no box on the GT slice -> a miss
    # [0, 0, 6, 7] on slice 15: +1 IoU 56/121 = 0.46 -> a miss
    trks = [trk([14, 15, 16], [0, 0, 7, 7]), trk([13, 14], [0, 0, 10, 10]),
            trk(15, [0, 0, 6, 7])]
    complete = label_proposals(gt, trks, complete=True)
    np.testing.assert_array_equal(complete.labels, [1, 0, 0])
    np.testing.assert_array_equal(complete.gt_index, [0, -1, -1])
    np.testing.assert_allclose(complete.iou, [64 / 121, 0.0, 56 / 121])
    recist = label_proposals(gt, trks, complete=False)
    np.testing.assert_array_equal(recist.labels, [1, -1, -1])


def test_iou_exactly_half_is_a_hit_and_best_gt_is_reported():
    # GT A [0,0,9,9] (+1: 100 px); proposal [0,0,9,4] -> 50/100 = 0.5 exactly: hit
    # GT B on the same slice far away is not hit
    gt = np.array([[12, 0, 0, 9, 9], [12, 50, 50, 60, 60]], dtype=np.float64)
    res = label_proposals(gt, [trk(12, [0, 0, 9, 4])], complete=True)
    assert res.labels.tolist() == [1] and res.gt_index.tolist() == [0]
    assert res.iou[0] == pytest.approx(0.5)


def test_no_ground_truth_and_no_proposal():
    empty = np.zeros((0, 5))
    assert label_proposals(empty, [trk(12, [0, 0, 5, 5])], complete=True).labels.tolist() == [0]
    assert label_proposals(empty, [trk(12, [0, 0, 5, 5])], complete=False).labels.tolist() == [-1]
    assert label_proposals(empty, [], complete=True).labels.size == 0


def _set(keys):
    vols = {k: VolumeInfo(key=k, series=k[:12], slice_range=(10, 20)) for k in keys}
    props = [Proposal(key=k, index=i, tracklet=trk(15, [0, 0, 10, 10] if i == 0 else
                                                    [40, 40, 50, 50])) for k in keys
             for i in range(2)]
    return ProposalSet(vols, props)


def test_label_a_set_complete_recist_and_flagged_incomplete():
    keys = [KEY, '000002_01_01_010-020', '000003_01_01_010-020']
    gt = {k: np.array([[15, 0, 0, 10, 10]], dtype=np.float64) for k in keys[:2]}
    vols = {k: VolumeInfo(key=k, series=k[:12], slice_range=(10, 20)) for k in keys[:2]}
    vols[keys[1]].complete = False  # a JSON's "complete": false volume
    ann = AnnotationSet('ann.json', 'json', vols, gt)
    pset = _set(keys)
    counts = label_proposal_set(pset, ann, 'complete')
    assert counts == dict(volumes=2, positive=2, negative=1, unknown=1, recist_only_volumes=1)
    by = pset.by_volume()
    assert [p.label for p in by[keys[0]]] == [1, 0]
    assert [p.label_source for p in by[keys[0]]] == ['complete'] * 2
    assert [p.label for p in by[keys[1]]] == [1, -1]  # flagged incomplete: RECIST rule
    assert [p.label for p in by[keys[2]]] == [-1, -1]  # not in the annotation set: untouched
    assert [p.label_source for p in by[keys[2]]] == [None, None]
    assert by[keys[0]][0].gt_index == 0 and by[keys[0]][1].gt_index == -1
    with pytest.raises(ValueError, match='source'):
        label_proposal_set(pset, ann, 'partial')
