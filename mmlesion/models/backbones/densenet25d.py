"""2.5D DenseNet-121 with MULAN 3D context fusion (the MSCN backbone).

The input of one sample is ``G`` slice groups of 3 channels each, stacked on
the channel axis (``N x (G*3) x H x W``). Group ``g`` holds channels
``3g .. 3g+2``; the central group ``G // 2`` holds the key slice in its middle
channel (G=1: the 3-slice CenterNet baseline; G=3: 9-slice MSCN/MULAN).
A single DenseNet trunk (ImageNet 3-channel layout) runs on all groups as a
batch of ``N*G`` images, sample-major (the ``G`` groups of a sample are
consecutive), which is the layout 3DCE/MULAN reshape into ``N x (G*C)``.

3D context fusion (MULAN): at each fusion level the ``G`` groups' maps are
concatenated (``N x G*C x h x w``) and a 1x1 conv (with bias, no
activation) maps them to ``C`` channels. Where the fused map goes is
``fusion_mode``:

* ``'replace'`` (MULAN, the default): it *replaces* the central group's
  features, so later stages of the central group see fused features while the
  other groups are untouched. (With BN layers in training mode the batch
  statistics of layers after an early fusion level are shared by all groups;
  in eval mode, or with fusion at the last level only (MULAN's default), the
  other groups are exactly unaffected.)
* ``'output'`` (M3DCF-style multi-scale fusion, docs/method.md#m3dcf): it is
  only the level's *output*; the trunk continues on the unfused per-slice
  features, so every level's fusion sees the features extracted from each
  slice alone, and a multi-scale head gets one fused map per level.

At a single fusion level that is the last level computed, the two modes are
the same computation (nothing runs after it), bit for bit.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

from ..utils.torchvision_densenet import load_torchvision_densenet

FUSION_MODES = ('replace', 'output')


class DenseLayer(nn.Module):
    """Pre-activation bottleneck layer: BN-ReLU-1x1 conv-BN-ReLU-3x3 conv.

    Sub-module names follow torchvision (``norm1``, ``conv1``, ``norm2``,
    ``conv2``) so ImageNet weights map one to one.

    Args:
        in_channels (int): Channels of the concatenated block input so far.
        growth_rate (int): Output channels of the layer.
        bn_size (int): Bottleneck width multiplier (1x1 conv outputs
            ``bn_size * growth_rate`` channels).
        norm_cfg (dict): Norm layer config.
        with_cp (bool): Recompute the bottleneck in backward (saves the
            memory of the concatenation + BN + 1x1 conv activations).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int,
                 norm_cfg: dict, with_cp: bool = False) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, mid)[1]
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.with_cp = with_cp

    def bottleneck(self, *features: Tensor) -> Tensor:
        """Concatenate the previous features and apply BN-ReLU-1x1 conv."""
        return self.conv1(F.relu(self.norm1(torch.cat(features, 1))))

    def forward(self, features: List[Tensor]) -> Tensor:
        """Args: features: the block input and every earlier layer output,
        each ``B x c_i x h x w``. Returns ``B x growth_rate x h x w``."""
        if self.with_cp and any(f.requires_grad for f in features):
            out = cp.checkpoint(
                self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        return self.conv2(F.relu(self.norm2(out)))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers named ``denselayer1..N``; the output is the
    concatenation of the input and all layer outputs
    (``in_channels + num_layers * growth_rate`` channels)."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int,
                 bn_size: int, norm_cfg: dict, with_cp: bool) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f'denselayer{i + 1}',
                DenseLayer(in_channels + i * growth_rate, growth_rate,
                           bn_size, norm_cfg, with_cp))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv (halves channels)-2x2 average pool (stride x2).

    Names ``norm`` / ``conv`` as in torchvision."""

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: dict) -> None:
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2, 2)


def _is_channels_last(weight: Tensor) -> bool:
    """True when a 4-D weight is stored NHWC and not also NCHW-contiguous."""
    return (weight.is_contiguous(memory_format=torch.channels_last)
            and not weight.is_contiguous())


@MODELS.register_module()
class DenseNet25D(BaseModule):
    """2.5D DenseNet (DenseNet-121 truncated after dense block 3) shared
    across slice groups, with MULAN 3D context fusion.

    Levels (0-based, like mmdet ``out_indices``) for DenseNet-121, input
    ``H x W`` px:

    ========  ==========================  ========  ========
    level     module output               stride    channels
    ========  ==========================  ========  ========
    0         dense block 1               4         256
    1         dense block 2               8         512
    2         dense block 3               16        1024
    ========  ==========================  ========  ========

    Outputs are the raw dense-block concatenations (pre-activation
    DenseNet: no BN/ReLU after the block), of the central slice group, fused
    where the level is in ``fusion_levels``. Transition 3, dense block 4 and
    ``norm5`` of torchvision's DenseNet-121 are not built.

    Stages for ``frozen_stages``: stage 0 = stem (``conv0``, ``norm0``);
    stage k (1..3) = dense block k together with the transition that
    downsamples into it (``transition{k-1}``, k >= 2), as mmdet's ResNet puts
    a stage's stride-2 conv in that stage. Fusion convs are never frozen.

    With ``num_slice_groups=1`` there is nothing to fuse (concatenating one
    group and a 1x1 conv would only be an extra linear layer), so no fusion
    conv is built and ``fusion_levels`` is ignored: the 3-slice CenterNet
    baseline is a plain truncated DenseNet-121.

    Args:
        num_slice_groups (int): Slice groups ``G`` per sample (odd; the
            central one ``G // 2`` holds the key slice). 1 or 3 in the paper.
        in_channels_per_group (int): Channels per group (3: ImageNet layout).
        growth_rate (int): DenseNet growth rate (32 for DenseNet-121).
        block_config (Sequence[int]): Dense layers per kept block
            ((6, 12, 24) for DenseNet-121 truncated after block 3).
        bn_size (int): Bottleneck multiplier (4).
        num_init_features (int): Stem conv channels (64).
        out_indices (Sequence[int]): Levels to output (0-based).
        fusion_levels (Sequence[int]): Levels after which the groups are
            fused (0-based; MULAN default: the last level only).
        fusion_mode (str): ``'replace'`` (MULAN: the fused map replaces the
            central group's features in the trunk) or ``'output'`` (M3DCF-style:
            the fused map is the level's output only, the trunk stays
            per-slice); see the module docstring.
        frozen_stages (int): Stages ``0..frozen_stages`` are frozen (eval mode,
            no grad); -1 freezes nothing.
        norm_eval (bool): Keep every BN layer in eval mode during training
            (frozen running statistics; affine params still train unless
            frozen).
        norm_cfg (dict): Norm layer config (``dict(type='SyncBN')`` for DDP).
        with_cp (bool): Gradient checkpointing of the dense-layer bottlenecks
            (as torchvision's ``memory_efficient``; the recomputation updates
            ``norm1`` running statistics a second time, as there).
        pretrained_torchvision (str, optional): Path of a torchvision
            ``densenet121`` state dict (``.pth``); mapped by
            :func:`load_torchvision_densenet` in :meth:`init_weights` (the
            fusion convs keep their initialisation). For checkpoints saved
            from this class use ``init_cfg=dict(type='Pretrained', ...)``
            instead; the two are exclusive.
        init_cfg (dict | list[dict], optional): mmengine init config.
            Default: Kaiming (fan_out, normal) for convs, BN weight 1 / bias 0,
            fusion convs ``kaiming_uniform_(a=1)`` with zero bias as in MULAN.
    """

    def __init__(self,
                 num_slice_groups: int = 3,
                 in_channels_per_group: int = 3,
                 growth_rate: int = 32,
                 block_config: Sequence[int] = (6, 12, 24),
                 bn_size: int = 4,
                 num_init_features: int = 64,
                 out_indices: Sequence[int] = (0, 1, 2),
                 fusion_levels: Sequence[int] = (2, ),
                 fusion_mode: str = 'replace',
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 with_cp: bool = False,
                 pretrained_torchvision: Optional[str] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(
                         type='Kaiming',
                         layer='Conv2d',
                         override=dict(
                             type='Kaiming',
                             name='fusion_convs',
                             a=1,
                             mode='fan_in',
                             nonlinearity='leaky_relu',
                             distribution='uniform')),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm']),
                 ]) -> None:
        if pretrained_torchvision is not None and _has_pretrained(init_cfg):
            raise ValueError(
                'DenseNet25D: give either pretrained_torchvision (a '
                "torchvision densenet121 .pth) or init_cfg=dict(type="
                "'Pretrained', ...) (a checkpoint of this class), not both")
        super().__init__(init_cfg=init_cfg)
        if num_slice_groups < 1 or num_slice_groups % 2 == 0:
            raise ValueError('DenseNet25D: num_slice_groups must be a '
                             'positive odd number (the central group holds '
                             f'the key slice), got {num_slice_groups}')
        num_levels = len(block_config)
        if num_levels < 1:
            raise ValueError('DenseNet25D: block_config needs >= 1 block')
        for name, levels in (('out_indices', out_indices),
                             ('fusion_levels', fusion_levels)):
            bad = [i for i in levels if not 0 <= i < num_levels]
            if bad:
                raise ValueError(
                    f'DenseNet25D: {name} must be in [0, {num_levels - 1}] '
                    f'(one level per dense block), got {tuple(levels)}')
        if fusion_mode not in FUSION_MODES:
            raise ValueError(f'DenseNet25D: fusion_mode must be one of {FUSION_MODES}, '
                             f'got {fusion_mode!r}')
        if len(out_indices) == 0:
            raise ValueError('DenseNet25D: out_indices is empty')
        if not -1 <= frozen_stages <= num_levels:
            raise ValueError(f'DenseNet25D: frozen_stages must be in '
                             f'[-1, {num_levels}], got {frozen_stages}')

        self.num_slice_groups = num_slice_groups
        self.in_channels_per_group = in_channels_per_group
        self.central_group = num_slice_groups // 2
        self.out_indices = tuple(sorted(out_indices))
        self.fusion_levels = (
            tuple(sorted(set(fusion_levels)))
            if num_slice_groups > 1 else ())
        self.fusion_mode = fusion_mode
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.pretrained_torchvision = pretrained_torchvision
        self.num_dense_blocks = num_levels

        self.conv0 = nn.Conv2d(
            in_channels_per_group,
            num_init_features,
            7,
            stride=2,
            padding=3,
            bias=False)
        self.norm0 = build_norm_layer(norm_cfg, num_init_features)[1]
        channels = num_init_features
        self.out_channels: List[int] = []
        for i, num_layers in enumerate(block_config):
            if i > 0:
                self.add_module(f'transition{i}',
                                Transition(channels, channels // 2, norm_cfg))
                channels //= 2
            self.add_module(
                f'denseblock{i + 1}',
                DenseBlock(num_layers, channels, growth_rate, bn_size,
                           norm_cfg, with_cp))
            channels += num_layers * growth_rate
            self.out_channels.append(channels)
        # keys are str(level): ModuleDict keys must be strings
        self.fusion_convs = nn.ModuleDict({
            str(level): nn.Conv2d(num_slice_groups * self.out_channels[level],
                                  self.out_channels[level], 1)
            for level in self.fusion_levels
        })
        self._freeze_stages()

    def _stage_modules(self, stage: int) -> List[nn.Module]:
        if stage == 0:
            return [self.conv0, self.norm0]
        modules = [getattr(self, f'denseblock{stage}')]
        if stage > 1:
            modules.insert(0, getattr(self, f'transition{stage - 1}'))
        return modules

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for module in self._stage_modules(stage):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def init_weights(self) -> None:
        """Apply ``init_cfg``; then map torchvision weights if given."""
        first_call = not self._is_init
        super().init_weights()
        if self.pretrained_torchvision is not None and first_call:
            load_torchvision_densenet(self, self.pretrained_torchvision,
                                      self.num_dense_blocks)

    def forward_groups(self, x: Tensor) -> List[Tensor]:
        """Features of every slice group at every level up to the last one
        needed by ``out_indices``.

        Args:
            x (Tensor): ``N x (G*C_in) x H x W`` (C_in = 3 channels per group).

        Returns:
            list[Tensor]: Per level ``N x G x C_l x H_l x W_l``; the central
            group ``[:, G // 2]`` holds the fused map at fusion levels (in both
            modes; with ``'output'`` the trunk went on from the unfused map).
        """
        n_groups = self.num_slice_groups
        expected = n_groups * self.in_channels_per_group
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(
                f'DenseNet25D: expected input N x {expected} x H x W '
                f'({n_groups} slice group(s) x {self.in_channels_per_group} '
                f'channels), got {tuple(x.shape)}')
        n, _, h, w = x.shape
        # sample-major batch: row n * G + g is group g of sample n
        x = x.reshape(n * n_groups, self.in_channels_per_group, h, w)
        if _is_channels_last(self.conv0.weight):
            # follow the weights' layout (MemoryFormatHook) instead of converting at conv0
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(
            F.relu(self.norm0(self.conv0(x))), 3, stride=2, padding=1)
        outs = []
        for level in range(max(self.out_indices) + 1):
            if level > 0:
                x = getattr(self, f'transition{level}')(x)
            x = getattr(self, f'denseblock{level + 1}')(x)
            out = x
            if level in self.fusion_levels:
                out = self._fuse(x, level, n)
                if self.fusion_mode == 'replace':
                    x = out
            outs.append(out.reshape(n, n_groups, *out.shape[1:]))
        return outs

    def _fuse(self, x: Tensor, level: int, n: int) -> Tensor:
        """Replace the central group's rows of ``x`` (``N*G x C x h x w``) by
        the 1x1-conv fusion of all groups; other rows are returned as is."""
        n_groups = self.num_slice_groups
        c, h, w = x.shape[1:]
        fused = self.fusion_convs[str(level)](
            x.reshape(n, n_groups * c, h, w))
        groups = x.reshape(n, n_groups, c, h, w)
        # rebuilt with cat (not an in-place write) so autograd keeps the
        # unfused central features that the fusion conv consumed
        groups = torch.cat([
            groups[:, :self.central_group],
            fused.unsqueeze(1), groups[:, self.central_group + 1:]
        ], 1)
        return groups.reshape(n * n_groups, c, h, w)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): ``N x (G*3) x H x W`` stacked slice groups.

        Returns:
            tuple[Tensor]: Central-group (fused) features at ``out_indices``,
            level ``l`` is ``N x out_channels[l] x H/2^(l+2) x W/2^(l+2)``
            (floor-divided through each stride-2 layer).
        """
        outs = self.forward_groups(x)
        return tuple(outs[level][:, self.central_group]
                     for level in self.out_indices)

    def train(self, mode: bool = True) -> 'DenseNet25D':
        """Set train mode, keeping frozen stages (and with ``norm_eval`` all
        BN layers) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def _has_pretrained(init_cfg) -> bool:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(
        isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
        for cfg in cfgs)
