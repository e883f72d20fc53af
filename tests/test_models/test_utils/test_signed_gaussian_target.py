import math

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.models.dense_heads import CenterNetHead
from mmlesion.models.utils import (
    draw_box_gaussians,
    gen_signed_gaussian_target,
    signed_gaussian_target,
)


def _gauss(dx, dy, radius):
    """Value of mmdet's Gaussian at offset (dx, dy): sigma = (2r + 1) / 6."""
    sigma = (2 * radius + 1) / 6
    return math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))


def test_radius_rule_is_centernet_min_overlap_0_3():
    # box 20 x 12 px on the map. gaussian_radius(min_overlap=0.3) = min of
    # r1 = (32 - sqrt(32^2 - 4 * 240 * 0.7 / 1.3)) / 2            = 4.74
    # r2 = (64 - sqrt(64^2 - 16 * 0.7 * 240)) / 8                  = 3.31
    # r3 = (-19.2 + sqrt(19.2^2 + 4 * 1.2 * 0.7 * 240)) / (2 * 1.2) = 6.28
    # -> int(3.31) = 3
    heatmap = torch.zeros(1, 32, 32)
    draw_box_gaussians(heatmap, torch.tensor([[0., 4., 20., 16.]]), None,
                       1.0, 1.0)
    assert heatmap[0, 10, 10] == 1
    assert heatmap[0, 10, 13].item() == pytest.approx(_gauss(3, 0, 3),
                                                      rel=1e-6)
    assert heatmap[0, 12, 11].item() == pytest.approx(_gauss(1, 2, 3),
                                                      rel=1e-6)
    assert heatmap[0, 10, 14] == 0 and heatmap[0, 14, 10] == 0
    assert heatmap[0, 13, 13] > 0 and heatmap[0, 6, 7] == 0
    assert (heatmap > 0).sum() == 7 * 7


def test_same_rule_equals_centernet_head_targets():
    torch.manual_seed(0)
    head = CenterNetHead(in_channels=1, feat_channels=1, num_classes=3,
                         test_cfg=ConfigDict(topk=10,
                                             local_maximum_kernel=3))
    xy = torch.rand(6, 2) * 100
    wh = torch.rand(6, 2) * 60 + 2
    boxes = torch.cat([xy, xy + wh], 1)
    labels = torch.tensor([0, 1, 2, 0, 0, 1])
    targets, _ = head.get_targets([boxes], [labels], (1, 3, 40, 48),
                                  (160, 192))
    ours = torch.zeros(3, 40, 48)
    draw_box_gaussians(ours, boxes, labels, 48 / 192, 40 / 160)
    assert torch.equal(ours, targets['center_heatmap_target'][0])


def test_signed_target_values_and_overwrite():
    # lesion A: centre (10, 10), radius 3; hard negative B: box 14 x 8 ->
    # centre (13, 10), radius int(2.24) = 2; hard negative C on lesion D's
    # centre (24, 24)
    pos_boxes = torch.tensor([[0., 4., 20., 16.], [18., 18., 30., 30.]])
    neg_boxes = torch.tensor([[6., 6., 20., 14.], [18., 18., 30., 30.]])
    y, yp, yn = gen_signed_gaussian_target(
        pos_boxes, torch.tensor([0, 0]), neg_boxes, None, 1, (32, 32),
        (32, 32))
    y, yp, yn = y[0], yp[0], yn[0]
    assert y[10, 10] == 1  # positive centre outside B's radius
    assert y[10, 13] == -1  # hard-negative centre
    assert y[24, 24] == -1  # negative overwrites the positive peak D
    assert yp[24, 24] == 1
    # overlap pixel (12, 10): Y^p = g(2, 0; r=3) > 0 but Y^n = g(1, 0; r=2)
    assert yp[10, 12].item() == pytest.approx(_gauss(2, 0, 3), rel=1e-6)
    assert y[10, 12].item() == pytest.approx(-_gauss(1, 0, 2), rel=1e-6)
    # where Y^n == 0 the positive heatmap is kept exactly
    keep = yn == 0
    assert torch.equal(y[keep], yp[keep])
    assert y[10, 8].item() == pytest.approx(_gauss(2, 0, 3), rel=1e-6)
    assert y.min() == -1 and y.max() == 1


def test_signed_gaussian_target_rule_elementwise():
    pos = torch.tensor([0.0, 0.5, 1.0, 1.0, 0.2])
    neg = torch.tensor([0.0, 0.0, 0.0, 0.3, 1.0])
    expected = torch.tensor([0.0, 0.5, 1.0, -0.3, -1.0])
    assert torch.equal(signed_gaussian_target(pos, neg), expected)
    with pytest.raises(ValueError, match='shapes differ'):
        signed_gaussian_target(pos, neg[:3])


def test_center_rule_labels_and_out_of_map():
    heatmap = torch.zeros(2, 16, 16)
    boxes = torch.tensor([[0., 0., 10., 10.], [40., 40., 50., 50.]])
    # no labels: every class; second box's centre (45, 45) is off the map
    draw_box_gaussians(heatmap, boxes, None, 1.0, 1.0, radius_rule='center')
    assert (heatmap != 0).sum() == 2
    assert heatmap[0, 5, 5] == 1 and heatmap[1, 5, 5] == 1
    heatmap.zero_()
    draw_box_gaussians(heatmap, boxes[:1], torch.tensor([1]), 1.0, 1.0)
    assert heatmap[0].sum() == 0 and heatmap[1, 5, 5] == 1
    with pytest.raises(ValueError, match='radius_rule'):
        draw_box_gaussians(heatmap, boxes, None, 1.0, 1.0, radius_rule='x')
    with pytest.raises(ValueError, match='labels must be in'):
        draw_box_gaussians(heatmap, boxes, torch.tensor([0, 2]), 1.0, 1.0)
