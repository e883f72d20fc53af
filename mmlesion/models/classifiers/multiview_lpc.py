"""Multi-view and axial lesion proposal classifiers (paper Sec. III-D, Fig. 3 and Fig. 5b).

Axial, coronal and sagittal patches through the proposal centre (``V x C x H x W`` per sample,
:mod:`mmlesion.datasets.lpc_patches`) each go through a ResNet-18 trunk -- one trunk per view
(the paper) or one shared trunk *(ours, ``share_backbone=True``)* -- are globally average-pooled,
concatenated, and one fully connected layer gives the logit; ``s_c`` is its sigmoid.
:class:`AxialLPC` is the paper's 2D ablation: the axial view only.
"""
import copy
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from .base_lpc import BaseLPC

__all__ = ['MultiViewLPC', 'AxialLPC']


def _backbone_channels(backbone: nn.Module, cfg: dict) -> tuple:
    feat_dim = getattr(backbone, 'feat_dim', None)
    if feat_dim is None:
        raise ValueError(f'backbone {cfg.get("type")!r} has no feat_dim (the channels of its last '
                         "output); use mmdet's ResNet or set feat_dim on it")
    conv1 = getattr(backbone, 'conv1', None)
    in_channels = getattr(conv1, 'in_channels', None) or int(cfg.get('in_channels', 3))
    return int(feat_dim), int(in_channels)


@MODELS.register_module()
class MultiViewLPC(BaseLPC):
    """Multi-view 2D LPC.

    Args:
        backbone: 2D trunk config; mmdet's ``ResNet(depth=18, out_indices=(3, ),
            norm_eval=False)``.  ImageNet weights: ``init_cfg=dict(type='Pretrained',
            checkpoint='<local torchvision resnet18 file>')`` on the backbone (nothing is
            downloaded; torchvision's key names match mmdet's ResNet, ``in_channels=3`` only).
        num_views: views per sample (3: axial, coronal, sagittal).
        share_backbone: one trunk for all views instead of one per view.
        loss_cls, dropout, data_preprocessor, init_cfg: see :class:`BaseLPC`.

    Inputs: ``B x V x C x H x W``; a one-channel patch is repeated to the trunk's input channels
    (3 for ImageNet weights).
    """

    def __init__(self, backbone: dict, num_views: int = 3, share_backbone: bool = False,
                 loss_cls: Optional[dict] = None, dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(loss_cls=loss_cls, dropout=dropout,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if int(num_views) < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        self.num_views = int(num_views)
        self.share_backbone = bool(share_backbone)
        n_trunks = 1 if self.share_backbone else self.num_views
        self.backbones = nn.ModuleList(
            [MODELS.build(copy.deepcopy(backbone)) for _ in range(n_trunks)])
        feat_dim, self.in_channels = _backbone_channels(self.backbones[0], backbone)
        self._init_head(feat_dim * self.num_views)

    def _trunk(self, i: int, x: Tensor) -> Tensor:
        feats = self.backbones[i](x)
        last = feats[-1] if isinstance(feats, (list, tuple)) else feats
        return torch.flatten(F.adaptive_avg_pool2d(last, 1), 1)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """``B x V x C x H x W`` -> ``B x (V * feat)`` (view features concatenated in order)."""
        if inputs.dim() != 5 or inputs.shape[1] != self.num_views:
            raise ValueError(f'{type(self).__name__} expects B x {self.num_views} x C x H x W '
                             f'patches (one per view), got {tuple(inputs.shape)}; do the '
                             "dataset's views match num_views?")
        b, v, c, h, w = inputs.shape
        if c != self.in_channels:
            if c != 1:
                raise ValueError(f'patches have {c} channels, the trunk expects '
                                 f'{self.in_channels}')
            inputs = inputs.expand(b, v, self.in_channels, h, w)
        if self.share_backbone:
            f = self._trunk(0, inputs.reshape(b * v, -1, h, w))
            return f.reshape(b, -1)
        return torch.cat([self._trunk(i, inputs[:, i]) for i in range(v)], dim=1)


@MODELS.register_module()
class AxialLPC(MultiViewLPC):
    """The axial-only 2D LPC (the paper's 2D ablation): :class:`MultiViewLPC` with one view.

    Inputs: ``B x 1 x C x H x W`` (the dataset's ``views=('axial', )``).  ``num_views`` must be
    1; ``share_backbone`` has no effect (one view, one trunk).
    """

    def __init__(self, backbone: dict, num_views: int = 1, share_backbone: bool = True,
                 loss_cls: Optional[dict] = None, dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        # share_backbone is accepted (a multi-view config can be inherited) and moot: one view
        if int(num_views) != 1:
            raise ValueError(f'AxialLPC sees the axial view only (num_views=1), got {num_views}')
        super().__init__(backbone, num_views=1, share_backbone=True, loss_cls=loss_cls,
                         dropout=dropout, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
