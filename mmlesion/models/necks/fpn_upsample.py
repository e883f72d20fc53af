"""FPN-style top-down upsampling neck: multi-level backbone maps -> one
stride-4 map for the CenterNet head (MSCN)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS


@MODELS.register_module()
class LesionFPNUpsample(BaseModule):
    """Top-down FPN path that ends at the finest input level.

    For inputs ``C_0 .. C_{L-1}`` (finest first, e.g. DenseNet25D strides
    4/8/16 with 256/512/1024 channels): lateral 1x1 convs map every level to
    ``feat_channels``; starting from the coarsest, ``P_{l} = lateral_l(C_l) +
    upsample(P_{l+1})`` (upsampled to ``C_l``'s exact size, so odd sizes work);
    a 3x3 conv smooths ``P_0`` to ``out_channels``. Only the finest map is
    returned: CenterNet predicts at a single stride (4).

    Args:
        in_channels (Sequence[int]): Channels of the input levels, finest
            first (``(256, 512, 1024)`` for DenseNet25D).
        out_channels (int): Channels of the output map (64 for the head).
        feat_channels (int, optional): Channels of the top-down path;
            defaults to ``out_channels``.
        upsample_cfg (dict): ``F.interpolate`` kwargs (no ``size`` or
            ``scale_factor``; the target size is the finer level's).
        conv_cfg, norm_cfg, act_cfg (dict, optional): for the ``ConvModule``
            laterals and the smoothing conv (FPN default: plain convs).
        init_cfg (dict | list[dict]): Xavier-uniform convs, as mmdet's FPN.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024),
                 out_channels: int = 64,
                 feat_channels: Optional[int] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Union[dict, List[dict]] = dict(
                     type='Xavier', layer='Conv2d',
                     distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 1:
            raise ValueError('LesionFPNUpsample: in_channels is empty')
        if 'size' in upsample_cfg or 'scale_factor' in upsample_cfg:
            raise ValueError('LesionFPNUpsample: upsample_cfg must not set '
                             'size/scale_factor (the finer level sets it), '
                             f'got {upsample_cfg}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.feat_channels = feat_channels or out_channels
        self.upsample_cfg = dict(upsample_cfg)
        self.lateral_convs = nn.ModuleList([
            ConvModule(
                c,
                self.feat_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                inplace=False) for c in self.in_channels
        ])
        # a ModuleList like mmdet FPN's fpn_convs: the neck's init_cfg, not
        # ConvModule.init_weights, then initialises it
        self.fpn_convs = nn.ModuleList([
            ConvModule(
                self.feat_channels,
                out_channels,
                3,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                inplace=False)
        ])

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        """Args:
            inputs (Sequence[Tensor]): ``N x in_channels[l] x H_l x W_l``,
                finest level first, each level coarser than the previous.

        Returns:
            tuple[Tensor]: One ``N x out_channels x H_0 x W_0`` map (the
            finest input's size and stride).
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'LesionFPNUpsample: expected {len(self.in_channels)} input '
                f'levels (in_channels={self.in_channels}), got {len(inputs)}')
        top_down = self.lateral_convs[-1](inputs[-1])
        for level in range(len(inputs) - 2, -1, -1):
            lateral = self.lateral_convs[level](inputs[level])
            top_down = lateral + F.interpolate(
                top_down, size=lateral.shape[2:], **self.upsample_cfg)
        return (self.fpn_convs[0](top_down), )
