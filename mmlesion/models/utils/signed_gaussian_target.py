"""Signed CenterNet heatmap targets for the hard-negative suppression loss
(HNSL, Lesion Harvester, Cai et al. TMI 2020, Sec. III-E; docs/method.md#hnsl).

Positive heatmap ``Y^p``: max-merged Gaussians of lesion boxes, exactly as
mmdet's ``CenterNetHead.get_targets`` draws them (``gen_gaussian_target``,
radius ``max(0, int(gaussian_radius((h, w), min_overlap=0.3)))`` of the box
size on the feature map). Hard-negative heatmap ``Y^n``: the same for
hard-negative boxes. Master target::

    Y = -Y^n  where Y^n > 0,  else Y^p        (values in [-1, 1])

Negatives overwrite positives. mmdet's ``GaussianFocalLoss`` on ``Y`` then
treats ``Y == 1`` as positives and weights every other pixel's negative term
by ``(1 - Y)^gamma``: ``2^4 = 16`` at a hard-negative centre versus 1 at
ordinary background (gamma = 4).

All functions are pure torch (no mmengine structures); boxes are
``[x1, y1, x2, y2]`` in input-image pixels (0-based, continuous corners, the
padded ``batch_input_shape`` frame of mmdet).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.utils import gaussian_radius, gen_gaussian_target

RADIUS_RULES = ('same', 'center')


def draw_box_gaussians(heatmap: Tensor,
                       bboxes: Tensor,
                       labels: Optional[Tensor],
                       width_ratio: float,
                       height_ratio: float,
                       min_overlap: float = 0.3,
                       radius_rule: str = 'same') -> Tensor:
    """Max-merge one Gaussian per box into ``heatmap`` (in place).

    Centres and radii are computed with the same expressions as mmdet 3.3
    ``CenterNetHead.get_targets`` so that ``radius_rule='same'`` reproduces
    its positive heatmap bit for bit.

    Args:
        heatmap (Tensor): ``num_classes x H x W`` feature-map heatmap, values
            in [0, 1]; updated in place.
        bboxes (Tensor): ``K x 4`` boxes ``[x1, y1, x2, y2]`` in input px.
        labels (Tensor, optional): ``K`` class indices in
            ``[0, num_classes)``; None draws every box into every class
            channel (a hard negative without a class is a negative for all).
        width_ratio (float): Feature width / input width (e.g. 1/4).
        height_ratio (float): Feature height / input height.
        min_overlap (float): ``gaussian_radius`` min IoU (CenterNet: 0.3).
        radius_rule (str): ``'same'``: the CenterNet radius above;
            ``'center'``: radius 0, only the centre pixel is set to 1.

    Returns:
        Tensor: ``heatmap``. A box whose integer centre
        (``int(cx * width_ratio)``, as mmdet truncates) falls outside the
        feature map is skipped (it is not in view).
    """
    if radius_rule not in RADIUS_RULES:
        raise ValueError(f'radius_rule must be one of {RADIUS_RULES}, got '
                         f'{radius_rule!r}')
    if heatmap.dim() != 3:
        raise ValueError('heatmap must be num_classes x H x W, got shape '
                         f'{tuple(heatmap.shape)}')
    if bboxes.dim() != 2 or bboxes.shape[1] != 4:
        raise ValueError('bboxes must be K x 4 [x1, y1, x2, y2], got shape '
                         f'{tuple(bboxes.shape)}')
    num_classes, feat_h, feat_w = heatmap.shape
    if labels is not None:
        if labels.shape != bboxes.shape[:1]:
            raise ValueError(f'labels must have shape ({bboxes.shape[0]},), '
                             f'got {tuple(labels.shape)}')
        if labels.numel() and (labels.min() < 0
                               or labels.max() >= num_classes):
            raise ValueError(f'labels must be in [0, {num_classes}), got '
                             f'{labels.tolist()}')
    center_x = (bboxes[:, [0]] + bboxes[:, [2]]) * width_ratio / 2
    center_y = (bboxes[:, [1]] + bboxes[:, [3]]) * height_ratio / 2
    centers = torch.cat((center_x, center_y), dim=1)
    for j, ct in enumerate(centers):
        ctx_int, cty_int = ct.int()
        if not (0 <= ctx_int < feat_w and 0 <= cty_int < feat_h):
            continue
        if radius_rule == 'same':
            scale_box_h = (bboxes[j][3] - bboxes[j][1]) * height_ratio
            scale_box_w = (bboxes[j][2] - bboxes[j][0]) * width_ratio
            radius = gaussian_radius([scale_box_h, scale_box_w],
                                     min_overlap=min_overlap)
            radius = max(0, int(radius))
        else:
            radius = 0
        channels = range(num_classes) if labels is None else [labels[j]]
        for ind in channels:
            gen_gaussian_target(heatmap[ind], [ctx_int, cty_int], radius)
    return heatmap


def signed_gaussian_target(pos_heatmap: Tensor, neg_heatmap: Tensor) -> Tensor:
    """Master HNSL target ``Y = -Y^n where Y^n > 0 else Y^p``.

    Args:
        pos_heatmap (Tensor): ``Y^p``, any shape, values in [0, 1].
        neg_heatmap (Tensor): ``Y^n``, same shape, values in [0, 1].

    Returns:
        Tensor: ``Y`` in [-1, 1]; equal to ``pos_heatmap`` (bit for bit)
        where ``neg_heatmap`` is 0.
    """
    if pos_heatmap.shape != neg_heatmap.shape:
        raise ValueError('pos_heatmap and neg_heatmap shapes differ: '
                         f'{tuple(pos_heatmap.shape)} vs '
                         f'{tuple(neg_heatmap.shape)}')
    return torch.where(neg_heatmap > 0, -neg_heatmap, pos_heatmap)


def gen_signed_gaussian_target(
        pos_bboxes: Tensor,
        pos_labels: Tensor,
        neg_bboxes: Tensor,
        neg_labels: Optional[Tensor],
        num_classes: int,
        feat_hw: Tuple[int, int],
        img_hw: Tuple[int, int],
        min_overlap: float = 0.3,
        neg_radius_rule: str = 'same') -> Tuple[Tensor, Tensor, Tensor]:
    """HNSL heatmap target of one image from lesion and hard-negative boxes.

    Args:
        pos_bboxes (Tensor): ``K x 4`` lesion boxes, input px.
        pos_labels (Tensor): ``K`` class indices.
        neg_bboxes (Tensor): ``M x 4`` hard-negative boxes, input px.
        neg_labels (Tensor, optional): ``M`` class indices, or None for all
            classes.
        num_classes (int): Heatmap channels.
        feat_hw (tuple[int, int]): Feature map ``(H, W)``.
        img_hw (tuple[int, int]): Input (padded batch) ``(H, W)`` px.
        min_overlap (float): ``gaussian_radius`` min IoU (0.3).
        neg_radius_rule (str): Radius rule of hard negatives (see
            :func:`draw_box_gaussians`).

    Returns:
        tuple[Tensor]: ``(Y, Y^p, Y^n)``, each ``num_classes x H x W``.
    """
    feat_h, feat_w = feat_hw
    img_h, img_w = img_hw
    width_ratio = float(feat_w / img_w)
    height_ratio = float(feat_h / img_h)
    pos = pos_bboxes.new_zeros([num_classes, feat_h, feat_w])
    neg = pos_bboxes.new_zeros([num_classes, feat_h, feat_w])
    draw_box_gaussians(pos, pos_bboxes, pos_labels, width_ratio, height_ratio,
                       min_overlap, 'same')
    draw_box_gaussians(neg, neg_bboxes.to(pos), neg_labels, width_ratio,
                       height_ratio, min_overlap, neg_radius_rule)
    return signed_gaussian_target(pos, neg), pos, neg
