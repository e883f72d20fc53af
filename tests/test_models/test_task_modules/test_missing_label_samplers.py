"""The second-stage sampling of the missing-label strategies (paper Sec. IV-F) on hand-made
proposals whose IoU with one ground-truth box is known exactly.

The ground truth is the box [0, 0, 100, 100] (area 10^4).  A proposal [0, 0, 100, h] inside it
has IoU h / 100; one [0, 0, 100, 100 + d] containing it has IoU 100 / (100 + d); a box far away
has IoU 0.  mmdet computes IoU without the +1 pixel convention.
"""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401  (registers the components)
from mmdet.registry import MODELS, TASK_UTILS
from mmlesion.models.task_modules import overlap_band_weight, soft_sampling_weight

GT = [0.0, 0.0, 100.0, 100.0]
# max IoU with GT of each proposal below, in order
IOUS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.5, 0.8, 1.0]


def _proposals():
    boxes = [[300.0, 300.0, 340.0, 340.0],  # IoU 0
             [0.0, 0.0, 100.0, 5.0], [0.0, 0.0, 100.0, 10.0], [0.0, 0.0, 100.0, 20.0],
             [0.0, 0.0, 100.0, 30.0], [0.0, 0.0, 100.0, 45.0], [0.0, 0.0, 100.0, 50.0],
             [0.0, 0.0, 100.0, 125.0],  # contains GT: 100 / 125 = 0.8
             [0.0, 0.0, 100.0, 100.0]]
    return torch.tensor(boxes)


def _assign_and_sample(neg_iou_thr, sampler, num=64):
    init_default_scope('mmdet')
    assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                     neg_iou_thr=neg_iou_thr, min_pos_iou=0.5,
                                     match_low_quality=False, ignore_iof_thr=-1))
    sampler = TASK_UTILS.build(dict(sampler, num=num, pos_fraction=0.25,
                                    add_gt_as_proposals=False))
    pred = InstanceData(priors=_proposals())
    gt = InstanceData(bboxes=torch.tensor([GT]), labels=torch.zeros(1, dtype=torch.long))
    assign = assigner.assign(pred, gt)
    torch.testing.assert_close(assign.max_overlaps, torch.tensor(IOUS))
    return sampler.sample(assign, pred, gt)


def _ious(inds):
    return sorted(IOUS[i] for i in inds.tolist())


def test_obhs_is_mmdets_assigner_and_drops_background_below_0_1():
    res = _assign_and_sample((0.1, 0.5), dict(type='RandomSampler'))
    assert _ious(res.pos_inds) == [0.5, 0.8, 1.0]
    assert _ious(res.neg_inds) == [0.1, 0.2, 0.3, 0.45]  # 0 and 0.05 are never negatives
    assert not hasattr(res, 'neg_weights')


def test_plain_faster_rcnn_keeps_all_background():
    res = _assign_and_sample(0.5, dict(type='RandomSampler'))
    assert _ious(res.neg_inds) == [0.0, 0.05, 0.1, 0.2, 0.3, 0.45]


def test_mobhs_weights_overlapping_negatives_twice():
    res = _assign_and_sample(0.5, dict(type='OverlapBandWeightSampler'))
    assert _ious(res.neg_inds) == [0.0, 0.05, 0.1, 0.2, 0.3, 0.45]  # all background kept
    expected = [2.0 if 0.1 <= IOUS[i] < 0.5 else 1.0 for i in res.neg_inds.tolist()]
    assert res.neg_weights.tolist() == expected
    assert sorted(res.neg_weights.tolist()) == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert overlap_band_weight(torch.tensor([0.0999, 0.1, 0.4999, 0.5])).tolist() == \
        [1.0, 2.0, 2.0, 1.0]


def _gompertz(x, a=0.25, b=50.0, c=20.0):
    return a + (1 - a) * math.exp(-b * math.exp(-c * x))


def test_soft_sampling_weight_is_the_papers_gompertz_curve():
    x = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4])
    # hand values: exp(-50) ~ 0 -> 0.25; 50 e^-2 = 6.767 -> 0.25 + 0.75 * 0.00115 = 0.2509;
    # 50 e^-4 = 0.9158 -> 0.25 + 0.75 * 0.4002 = 0.5502; 50 e^-6 = 0.1239 -> 0.9126;
    # 50 e^-8 = 0.01677 -> 0.9875
    torch.testing.assert_close(soft_sampling_weight(x),
                               torch.tensor([0.25, 0.2509, 0.5502, 0.9126, 0.9875]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(soft_sampling_weight(x),
                               torch.tensor([_gompertz(v) for v in x.tolist()]))
    w = soft_sampling_weight(torch.linspace(0, 0.5, 51))
    assert (w[1:] >= w[:-1]).all() and w.min() >= 0.25 and w.max() < 1
    with pytest.raises(ValueError, match='a=1.5'):
        soft_sampling_weight(x, a=1.5)


def test_obss_sampler_weights_each_negative_by_its_overlap():
    res = _assign_and_sample(0.5, dict(type='OverlapSoftSampler'))
    assert _ious(res.neg_inds) == [0.0, 0.05, 0.1, 0.2, 0.3, 0.45]
    expected = torch.tensor([_gompertz(IOUS[i]) for i in res.neg_inds.tolist()])
    torch.testing.assert_close(res.neg_weights, expected)
    custom = _assign_and_sample(0.5, dict(type='OverlapSoftSampler', a=0.5, b=10.0, c=5.0))
    torch.testing.assert_close(
        custom.neg_weights,
        torch.tensor([_gompertz(IOUS[i], 0.5, 10.0, 5.0) for i in custom.neg_inds.tolist()]))


def test_weights_follow_the_ground_truth_added_as_proposals():
    """With ``add_gt_as_proposals`` the GT box is prepended: indices shift, weights still match
    each sampled negative's own overlap."""
    init_default_scope('mmdet')
    assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0.5))
    sampler = TASK_UTILS.build(dict(type='OverlapSoftSampler', num=64, pos_fraction=0.25))
    pred = InstanceData(priors=_proposals())
    gt = InstanceData(bboxes=torch.tensor([GT]), labels=torch.zeros(1, dtype=torch.long))
    res = sampler.sample(assigner.assign(pred, gt), pred, gt)
    ious = [([1.0] + IOUS)[i] for i in res.neg_inds.tolist()]
    assert sorted(ious) == [0.0, 0.05, 0.1, 0.2, 0.3, 0.45]
    torch.testing.assert_close(res.neg_weights, torch.tensor([_gompertz(v) for v in ious]))


def test_no_ground_truth_all_background_at_the_floor_weight():
    init_default_scope('mmdet')
    assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5))
    pred = InstanceData(priors=_proposals())
    gt = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    for cfg, weight in ((dict(type='OverlapSoftSampler'), _gompertz(0.0)),
                        (dict(type='OverlapBandWeightSampler'), 1.0)):
        res = TASK_UTILS.build(dict(cfg, num=64, pos_fraction=0.25)).sample(
            assigner.assign(pred, gt), pred, gt)
        assert res.pos_inds.numel() == 0 and res.neg_inds.numel() == 9
        torch.testing.assert_close(res.neg_weights, torch.full((9, ), weight))


@pytest.mark.parametrize('sampler', ['OverlapSoftSampler', 'OverlapBandWeightSampler'])
def test_weighted_classification_loss_equals_hand_computation(sampler):
    """Two images' sampled RoIs through the box head's loss: the cross-entropy of each RoI
    times its weight, summed, over the number of RoIs with non-zero weight (mmdet's
    ``avg_factor``)."""
    init_default_scope('mmdet')
    head = MODELS.build(dict(type='NegativeWeightedBBoxHead', in_channels=4, fc_out_channels=8,
                             roi_feat_size=7, num_classes=1))
    results = [_assign_and_sample(0.5, dict(type=sampler)) for _ in range(2)]
    n = sum(r.pos_inds.numel() + r.neg_inds.numel() for r in results)
    torch.manual_seed(1)
    cls_score = torch.randn(n, 2)  # columns: lesion, background
    bbox_pred = torch.zeros(n, 4)
    rois = torch.cat([torch.cat([torch.full((len(r.priors), 1), float(i)), r.priors], 1)
                      for i, r in enumerate(results)])
    cfg = ConfigDict(pos_weight=-1)
    out = head.loss_and_target(cls_score, bbox_pred, rois, results, cfg)
    labels, weights = out['bbox_targets'][0], out['bbox_targets'][1]
    # hand: per image, positives (label 0, weight 1) then negatives (label 1, sampler weight)
    want_labels, want_weights = [], []
    for r in results:
        want_labels += [0] * r.pos_inds.numel() + [1] * r.neg_inds.numel()
        want_weights += [1.0] * r.pos_inds.numel() + r.neg_weights.tolist()
    assert labels.tolist() == want_labels
    torch.testing.assert_close(weights, torch.tensor(want_weights))
    logp = torch.log_softmax(cls_score, 1)
    ce = [-logp[i, lab].item() for i, lab in enumerate(want_labels)]
    hand = sum(w * c for w, c in zip(want_weights, ce)) / sum(w > 0 for w in want_weights)
    assert out['loss_bbox']['loss_cls'].item() == pytest.approx(hand, rel=1e-5)


def test_head_without_sampler_weights_is_mmdets_box_head():
    init_default_scope('mmdet')
    ours = MODELS.build(dict(type='NegativeWeightedBBoxHead', in_channels=4, fc_out_channels=8,
                             roi_feat_size=7, num_classes=1))
    theirs = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8,
                               roi_feat_size=7, num_classes=1))
    results = [_assign_and_sample(0.5, dict(type='RandomSampler'))]
    cfg = ConfigDict(pos_weight=-1)
    for a, b in zip(ours.get_targets(results, cfg), theirs.get_targets(results, cfg)):
        torch.testing.assert_close(a, b)


def test_head_rejects_weights_of_the_wrong_length():
    init_default_scope('mmdet')
    head = MODELS.build(dict(type='NegativeWeightedBBoxHead', in_channels=4, fc_out_channels=8,
                             roi_feat_size=7, num_classes=1))
    res = _assign_and_sample(0.5, dict(type='OverlapSoftSampler'))
    res.neg_weights = res.neg_weights[:-1]
    with pytest.raises(ValueError, match='image 0: the sampler gave 5 negative weights for 6'):
        head.get_targets([res], ConfigDict(pos_weight=-1))
