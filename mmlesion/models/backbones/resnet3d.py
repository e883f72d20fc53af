"""A 3D ResNet (basic blocks) for the 3D lesion proposal classifier (paper Sec. IV-E, Fig. 5b).

The paper compares its multi-view LPC with "a 3D version of ResNet-18" on the sub-volume around
each proposal and gives no further detail; this is the plain 3D analogue of torchvision's
ResNet-18 *(ours)*: a 7x7x7 stride-2 stem, 3x3x3 max pooling (stride 2), four stages of two
basic blocks (3x3x3 convs, BN, ReLU) with ``base_channels * (1, 2, 4, 8)`` channels, the last
three stages stride 2, downsampling shortcuts 1x1x1 conv + BN.  Input ``N x C x D x H x W``;
output the last stage's map (global pooling belongs to the classifier).
"""
from typing import Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS

__all__ = ['ResNet3D', 'BasicBlock3D']


class BasicBlock3D(nn.Module):
    """Two 3x3x3 conv-BN layers with a residual connection (ResNet basic block in 3D)."""
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm3d(channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class ResNet3D(BaseModule):
    """3D ResNet with basic blocks (ResNet-18 layout by default).

    Args:
        depth: 10, 18 or 34 (blocks per stage (1, 1, 1, 1), (2, 2, 2, 2), (3, 4, 6, 3)).
        in_channels: input channels (1: a HU cube).
        base_channels: channels of the stem and the first stage (64 in ResNet-18).
        stem_stride: stride of the 7x7x7 stem conv (2 in ResNet-18).
        stem_pool: max-pool after the stem (ResNet-18: True).
        strides: stride of each stage.
        init_cfg: mmengine init config (default: Kaiming normal convs, constant BN).

    Attributes:
        feat_dim: channels of the output map.
    """
    arch_settings = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self, depth: int = 18, in_channels: int = 1, base_channels: int = 64,
                 stem_stride: int = 2, stem_pool: bool = True,
                 strides: Sequence[int] = (1, 2, 2, 2), init_cfg=None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv3d'),
                        dict(type='Constant', val=1, layer='BatchNorm3d')]
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for ResNet3D (one of '
                           f'{sorted(self.arch_settings)})')
        blocks = self.arch_settings[depth]
        if len(strides) != len(blocks):
            raise ValueError(f'strides needs {len(blocks)} values, got {strides!r}')
        self.depth = depth
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, base_channels, 7, stem_stride, 3, bias=False),
            nn.BatchNorm3d(base_channels), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool3d(3, 2, 1) if stem_pool else nn.Identity()
        layers = []
        c_in = base_channels
        for i, (n, stride) in enumerate(zip(blocks, strides)):
            c = base_channels * 2**i
            stage = [BasicBlock3D(c_in, c, stride)] + [BasicBlock3D(c, c) for _ in range(n - 1)]
            layers.append(nn.Sequential(*stage))
            c_in = c
        self.layers = nn.ModuleList(layers)
        self.feat_dim = c_in

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        x = self.pool(self.stem(x))
        for layer in self.layers:
            x = layer(x)
        return (x, )

