"""The 3D lesion proposal classifier (the paper's 3D ablation, Sec. IV-E, Fig. 5b): a 3D
ResNet-18 (:class:`~mmlesion.models.backbones.ResNet3D`) on the padded sub-volume around the
proposal, resampled to a fixed cube (:func:`mmlesion.datasets.lpc_patches.extract_cube`),
global average pooling, one fully connected layer; ``s_c`` is the sigmoid of its logit."""
import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from .base_lpc import BaseLPC

__all__ = ['LPC3D']


@MODELS.register_module()
class LPC3D(BaseLPC):
    """3D LPC.

    Args:
        backbone: 3D trunk config, e.g. ``dict(type='ResNet3D', depth=18, in_channels=1)``; must
            return a tuple of ``B x C x D' x H' x W'`` maps and have ``feat_dim``.
        loss_cls, dropout, data_preprocessor, init_cfg: see :class:`BaseLPC`.

    Inputs: ``B x 1 x D x H x W`` cubes.
    """

    def __init__(self, backbone: dict, loss_cls: Optional[dict] = None, dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(loss_cls=loss_cls, dropout=dropout,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(copy.deepcopy(backbone))
        feat_dim = getattr(self.backbone, 'feat_dim', None)
        if feat_dim is None:
            raise ValueError(f'backbone {backbone.get("type")!r} has no feat_dim')
        self._init_head(feat_dim)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """``B x C x D x H x W`` -> ``B x feat_dim``."""
        if inputs.dim() != 5:
            raise ValueError(f'LPC3D expects B x C x D x H x W cubes, got {tuple(inputs.shape)}'
                             "; is the dataset's mode 'cube'?")
        feats = self.backbone(inputs)
        last = feats[-1] if isinstance(feats, (list, tuple)) else feats
        return torch.flatten(F.adaptive_avg_pool3d(last, 1), 1)
