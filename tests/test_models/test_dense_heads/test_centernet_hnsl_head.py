import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlesion.models  # noqa: F401  (registers the components)
from mmdet.models.dense_heads import CenterNetHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmlesion.models import CenterNetHNSLHead

S = 128  # input size (px); the head works at stride 4 -> 32 x 32
TEST_CFG = dict(topk=100, local_maximum_kernel=3, max_per_img=100)


def _heads(num_classes=2, **kwargs):
    torch.manual_seed(0)
    ref = CenterNetHead(in_channels=4, feat_channels=8,
                        num_classes=num_classes,
                        test_cfg=ConfigDict(TEST_CFG))
    ref.init_weights()
    ours = CenterNetHNSLHead(in_channels=4, feat_channels=8,
                             num_classes=num_classes,
                             test_cfg=ConfigDict(TEST_CFG), **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _sample(bboxes, labels, hard_negatives=None, border=True):
    meta = dict(img_shape=(S, S), ori_shape=(S, S), pad_shape=(S, S),
                batch_input_shape=(S, S), scale_factor=(1.0, 1.0))
    if border:
        meta['border'] = (0, 0, 0, 0)
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long))
    if hard_negatives is not None:
        sample.gt_hard_negatives = InstanceData(
            bboxes=torch.tensor(hard_negatives,
                                dtype=torch.float32).reshape(-1, 4))
    return sample


BOXES = [[10., 20., 70., 90.], [64., 60., 120., 100.]]
LABELS = [0, 1]


def test_equals_centernet_head_without_hard_negatives():
    ref, ours = _heads()
    feat = (torch.rand(2, 4, S // 4, S // 4), )
    samples = [_sample(BOXES, LABELS), _sample(BOXES[:1], [1])]
    expected = ref.loss(feat, samples)
    variants = [
        samples,  # no gt_hard_negatives field
        [_sample(BOXES, LABELS, []), _sample(BOXES[:1], [1], [])],  # empty
    ]
    for batch in variants:
        got = ours.loss(feat, batch)
        assert set(got) == set(expected)
        for key in expected:
            assert torch.equal(got[key], expected[key]), key
    # predictions (with border given, as CenterNetHead requires)
    outs_ref = ref(feat)
    outs = ours(feat)
    metas = [s.metainfo for s in samples]
    for a, b in zip(
            ref.predict_by_feat(*outs_ref, batch_img_metas=metas),
            ours.predict_by_feat(*outs, batch_img_metas=metas)):
        assert torch.equal(a.bboxes, b.bboxes)
        assert torch.equal(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)
    # without 'border' CenterNetHead raises KeyError; ours reads it as 0
    metas_nb = [_sample(BOXES, LABELS, border=False).metainfo] * 2
    with pytest.raises(KeyError):
        ref.predict_by_feat(*outs_ref, batch_img_metas=metas_nb)
    res = ours.predict_by_feat(*outs, batch_img_metas=metas_nb)
    assert torch.equal(res[0].bboxes,
                       ref.predict_by_feat(
                           *outs_ref, batch_img_metas=metas)[0].bboxes)


def test_empty_gt():
    _, head = _heads()
    feat = (torch.rand(1, 4, S // 4, S // 4), )
    losses = head.loss(feat, [_sample([], [])])
    assert losses['loss_center_heatmap'] > 0
    assert losses['loss_wh'] == 0 and losses['loss_offset'] == 0
    # hard negatives only: still no positives, larger heatmap loss
    losses_hn = head.loss(feat, [_sample([], [], [[30., 30., 60., 50.]])])
    assert losses_hn['loss_center_heatmap'] > losses['loss_center_heatmap']
    assert losses_hn['loss_wh'] == 0 and losses_hn['loss_offset'] == 0


def test_one_box_losses_nonzero():
    _, head = _heads()
    feat = (torch.rand(1, 4, S // 4, S // 4), )
    losses = head.loss(feat, [_sample(BOXES[:1], [0], [[90., 10., 120.,
                                                          40.]])])
    assert all(v > 0 for v in losses.values())


def test_hard_negative_centre_weighs_16x():
    _, head = _heads(num_classes=1)
    gt = [torch.tensor(BOXES[:1])]
    labels = [torch.tensor([0])]
    hard_negative = [torch.tensor([[80., 80., 120., 112.]])]  # centre 25, 24
    targets, avg_factor = head.get_targets(
        gt, labels, (1, 1, 32, 32), (S, S), hard_negative_bboxes=hard_negative)
    y = targets['center_heatmap_target']
    assert y[0, 0, 24, 25] == -1
    assert y[0, 0, 13, 10] == 1  # lesion centre (40, 55) / 4
    assert avg_factor == 1
    p = 0.3
    pred = torch.full_like(y, p)
    loss = head.loss_center_heatmap(pred, y, reduction_override='none')
    # focal loss negative term: -log(1 - p) * p^2 * (1 - Y)^4 (eps 1e-12)
    ordinary = -math.log(1 - p + 1e-12) * p**2
    assert loss[0, 0, 2, 30].item() == pytest.approx(ordinary, rel=1e-6)
    assert loss[0, 0, 24, 25].item() == pytest.approx(16 * ordinary,
                                                      rel=1e-6)
    assert (loss[0, 0, 24, 25] / loss[0, 0, 2, 30]).item() == pytest.approx(
        16.0, rel=1e-6)
    # the full heatmap loss is the element sum over the positive count
    full = head.loss_center_heatmap(pred, y, avg_factor=avg_factor)
    assert full.item() == pytest.approx(loss.sum().item(), rel=1e-6)


def test_centre_rule_total_loss_difference():
    """'center' rule: one pixel at -1, so the loss grows by exactly
    (16 - 1) * (-log(1 - p) * p^2) / n_pos."""
    _, head = _heads(num_classes=1, hard_negative_radius_rule='center')
    p = 0.2
    pred = [torch.full((1, 1, 32, 32), p)]
    wh = [torch.zeros(1, 2, 32, 32)]
    off = [torch.zeros(1, 2, 32, 32)]
    gt = [InstanceData(bboxes=torch.tensor(BOXES), labels=torch.tensor([0,
                                                                        0]))]
    metas = [dict(batch_input_shape=(S, S))]
    base = head.loss_by_feat(pred, wh, off, gt, metas)
    hn = [InstanceData(bboxes=torch.tensor([[80., 0., 100., 20.]]))]
    with_hn = head.loss_by_feat(pred, wh, off, gt, metas,
                                batch_gt_hard_negatives=hn)
    ordinary = -math.log(1 - p + 1e-12) * p**2
    diff = (with_hn['loss_center_heatmap'] -
            base['loss_center_heatmap']).item()
    assert diff == pytest.approx(15 * ordinary / 2, rel=1e-4)
    assert torch.equal(with_hn['loss_wh'], base['loss_wh'])


def test_overwritten_positive_is_not_counted():
    _, head = _heads(num_classes=1)
    gt = [torch.tensor(BOXES)]
    labels = [torch.tensor([0, 0])]
    targets, avg_factor = head.get_targets(
        gt, labels, (1, 1, 32, 32), (S, S),
        hard_negative_bboxes=[torch.tensor(BOXES[1:])])
    assert avg_factor == 1  # 2 lesion peaks, one overwritten
    assert targets['center_heatmap_target'][0, 0, 20, 23] == -1
    assert targets['hard_negative_heatmap'][0, 0, 20, 23] == 1
    # wh / offset targets still come from both lesions
    assert targets['wh_offset_target_weight'].sum() == 4


def test_loss_reads_box_type_hard_negatives():
    _, head = _heads()
    feat = (torch.rand(1, 4, S // 4, S // 4), )
    tensor_hn = _sample(BOXES, LABELS, [[90., 10., 120., 40.]])
    boxed_hn = _sample(BOXES, LABELS)
    boxed_hn.gt_hard_negatives = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[90., 10., 120., 40.]])))
    a = head.loss(feat, [tensor_hn])
    b = head.loss(feat, [boxed_hn])
    plain = head.loss(feat, [_sample(BOXES, LABELS)])
    assert torch.equal(a['loss_center_heatmap'], b['loss_center_heatmap'])
    assert a['loss_center_heatmap'] > plain['loss_center_heatmap']
    bad = _sample(BOXES, LABELS)
    bad.gt_hard_negatives = InstanceData(bboxes=torch.zeros(2, 5))
    with pytest.raises(ValueError, match='M x 4'):
        head.loss(feat, [bad])


def test_perfect_heatmap_decodes_to_gt():
    _, head = _heads(num_classes=4)
    gt = torch.tensor([[10., 20., 100., 120.], [40., 50., 100., 100.],
                       [10., 20., 60., 120.]])
    labels = torch.tensor([1, 1, 2])
    targets, _ = head.get_targets(
        [gt], [labels], (1, 4, 32, 32), (S, S),
        hard_negative_bboxes=[torch.tensor([[96., 96., 124., 124.]])])
    heat = targets['center_heatmap_target'].clamp(min=0)
    result = head.predict_by_feat(
        [heat], [targets['wh_target']], [targets['offset_target']],
        batch_img_metas=[_sample(BOXES, LABELS, border=False).metainfo],
        rescale=True)[0]
    top = result.scores > 0.99
    assert top.sum() == 3
    got = sorted(map(tuple, result.bboxes[top].tolist()))
    want = sorted(map(tuple, gt.tolist()))
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)
    assert sorted(result.labels[top].tolist()) == [1, 1, 2]


def test_build_and_bad_rule():
    head = MODELS.build(
        dict(type='CenterNetHNSLHead', in_channels=8, feat_channels=8,
             num_classes=1, test_cfg=TEST_CFG))
    assert isinstance(head, CenterNetHNSLHead)
    assert head.test_cfg.topk == 100  # plain dict accepted
    assert head.loss_center_heatmap.alpha == 2.0
    assert head.loss_center_heatmap.gamma == 4.0
    assert head.loss_wh.loss_weight == 0.1
    assert head.loss_offset.loss_weight == 1.0
    with pytest.raises(ValueError, match='hard_negative_radius_rule'):
        CenterNetHNSLHead(in_channels=8, feat_channels=8, num_classes=1,
                          hard_negative_radius_rule='bigger')
