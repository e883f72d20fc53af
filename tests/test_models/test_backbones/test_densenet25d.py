import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

import mmlesion.models  # noqa: F401  (registers the components)
from mmdet.registry import MODELS
from mmlesion.models import DenseNet25D

# a small DenseNet for the slower checks: same code paths, 1/30 of the FLOPs
# channels: 16 + 2*8 = 32 -> transition 16 + 3*8 = 40 -> 20 + 4*8 = 52
TINY = dict(growth_rate=8, block_config=(2, 3, 4), bn_size=2,
            num_init_features=16)


@pytest.mark.parametrize('num_groups', [1, 3])
def test_densenet121_output_shapes_3_and_9_slices(num_groups):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DenseNet25D',
                              num_slice_groups=num_groups))
    model.eval()
    assert model.out_channels == [256, 512, 1024]
    x = torch.randn(1, 3 * num_groups, 64, 96)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == 3
    # strides 4, 8, 16 with DenseNet-121 widths
    assert outs[0].shape == (1, 256, 16, 24)
    assert outs[1].shape == (1, 512, 8, 12)
    assert outs[2].shape == (1, 1024, 4, 6)
    # DenseNet-121 blocks 1-3 + stem + transitions 1-2 (no block 4 / norm5)
    n_layers = sum(1 for name, _ in model.named_modules()
                   if name.split('.')[-1].startswith('denselayer'))
    assert n_layers == 6 + 12 + 24
    assert not hasattr(model, 'denseblock4')
    assert not hasattr(model, 'transition3')


def test_out_indices_subset_and_odd_size():
    model = DenseNet25D(num_slice_groups=3, out_indices=(1, ),
                        fusion_levels=(1, ), **TINY)
    assert model.out_channels == [32, 40, 52]
    model.eval()
    # 70 -> conv0 35 -> pool0 18 -> transition 9
    outs = model(torch.randn(2, 9, 70, 70))
    assert len(outs) == 1 and outs[0].shape == (2, 40, 9, 9)


def test_input_channel_check():
    model = DenseNet25D(num_slice_groups=3, **TINY)
    with pytest.raises(ValueError, match='N x 9 x H x W'):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='odd'):
        DenseNet25D(num_slice_groups=2, **TINY)
    with pytest.raises(ValueError, match='fusion_levels'):
        DenseNet25D(fusion_levels=(3, ), **TINY)


def test_single_group_has_no_fusion():
    model = DenseNet25D(num_slice_groups=1, fusion_levels=(0, 1, 2), **TINY)
    assert model.fusion_levels == ()
    assert len(model.fusion_convs) == 0
    assert not any('fusion' in k for k in model.state_dict())


def _pair(fusion_levels):
    """A fused model and an unfused one sharing every trunk weight."""
    torch.manual_seed(1)
    fused = DenseNet25D(num_slice_groups=3, fusion_levels=fusion_levels,
                        **TINY)
    fused.init_weights()
    plain = DenseNet25D(num_slice_groups=3, fusion_levels=(), **TINY)
    missing, unexpected = plain.load_state_dict(fused.state_dict(),
                                                strict=False)
    assert missing == [] and all(k.startswith('fusion_convs.')
                                 for k in unexpected)
    fused.eval()
    plain.eval()
    return fused, plain


def test_central_group_is_output_and_layout():
    """Without fusion the output is the trunk applied to channels 3..5."""
    torch.manual_seed(2)
    multi = DenseNet25D(num_slice_groups=3, fusion_levels=(), **TINY).eval()
    single = DenseNet25D(num_slice_groups=1, **TINY).eval()
    single.load_state_dict(multi.state_dict())
    x = torch.randn(2, 9, 32, 32)
    with torch.no_grad():
        out_multi = multi(x)
        out_single = single(x[:, 3:6])
        groups = multi.forward_groups(x)
        first = single(x[:, 0:3])
    for a, b in zip(out_multi, out_single):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    for level, g in enumerate(groups):
        torch.testing.assert_close(g[:, 0], first[level], rtol=0, atol=1e-5)


def test_fusion_changes_only_the_central_group():
    fused, plain = _pair(fusion_levels=(0, 1, 2))
    x = torch.randn(2, 9, 32, 32)
    with torch.no_grad():
        groups_fused = fused.forward_groups(x)
        groups_plain = plain.forward_groups(x)
    for level in range(3):
        for g in (0, 2):
            torch.testing.assert_close(
                groups_fused[level][:, g], groups_plain[level][:, g],
                rtol=0, atol=1e-5)
        diff = (groups_fused[level][:, 1] - groups_plain[level][:, 1]).abs()
        assert diff.max() > 1e-3


def test_fusion_is_1x1_conv_of_concatenated_groups():
    fused, plain = _pair(fusion_levels=(2, ))
    x = torch.randn(2, 9, 32, 32)
    with torch.no_grad():
        out = fused(x)
        groups = plain.forward_groups(x)
    conv = fused.fusion_convs['2']
    assert conv.weight.shape == (52, 3 * 52, 1, 1)
    n, g, c, h, w = groups[2].shape
    expected = F.conv2d(groups[2].reshape(n, g * c, h, w), conv.weight,
                        conv.bias)
    torch.testing.assert_close(out[2], expected, rtol=1e-5, atol=1e-5)
    # levels before the (only) fusion level are the plain central features
    torch.testing.assert_close(out[0], groups[0][:, 1], rtol=0, atol=1e-6)
    # MULAN init: kaiming_uniform_(a=1) -> bound sqrt(3 / fan_in), zero bias
    assert conv.bias.abs().max() == 0
    assert conv.weight.abs().max() <= (3.0 / (3 * 52))**0.5


def test_frozen_stages_and_norm_eval():
    model = DenseNet25D(num_slice_groups=3, frozen_stages=2, **TINY)
    model.train()
    frozen = [model.conv0, model.norm0, model.denseblock1,
              model.transition1, model.denseblock2]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in (model.transition2, model.denseblock3, model.fusion_convs):
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())

    model = DenseNet25D(num_slice_groups=3, norm_eval=True, **TINY)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.conv0.weight.requires_grad


def test_with_cp_matches_plain():
    torch.manual_seed(3)
    plain = DenseNet25D(num_slice_groups=3, **TINY)
    ckpt = DenseNet25D(num_slice_groups=3, with_cp=True, **TINY)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 9, 32, 32)
    outs_p = plain(x)
    outs_c = ckpt(x)
    sum(o.sum() for o in outs_p).backward()
    sum(o.sum() for o in outs_c).backward()
    for a, b in zip(outs_p, outs_c):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(plain.conv0.weight.grad, ckpt.conv0.weight.grad,
                               rtol=1e-4, atol=1e-5)


def test_pretrained_options_are_exclusive():
    with pytest.raises(ValueError, match='not both'):
        DenseNet25D(pretrained_torchvision='x.pth',
                    init_cfg=dict(type='Pretrained', checkpoint='y.pth'))


def _mulan_forward(model, x):
    """The MULAN forward as DenseNet25D computed it before ``fusion_mode`` existed: the trunk
    carries the fused central map after every fusion level."""
    n, g = x.shape[0], model.num_slice_groups
    h = x.reshape(n * g, 3, *x.shape[2:])
    h = F.max_pool2d(F.relu(model.norm0(model.conv0(h))), 3, stride=2, padding=1)
    outs = []
    for level in range(max(model.out_indices) + 1):
        if level > 0:
            h = getattr(model, f'transition{level}')(h)
        h = getattr(model, f'denseblock{level + 1}')(h)
        if str(level) in model.fusion_convs:
            c, hh, ww = h.shape[1:]
            fused = model.fusion_convs[str(level)](h.reshape(n, g * c, hh, ww))
            groups = h.reshape(n, g, c, hh, ww)
            h = torch.cat([groups[:, :1], fused.unsqueeze(1), groups[:, 2:]],
                          1).reshape(n * g, c, hh, ww)
        outs.append(h.reshape(n, g, *h.shape[1:])[:, g // 2])
    return tuple(outs[level] for level in model.out_indices)


@pytest.mark.parametrize('fusion_levels', [(2, ), (0, 2), (0, 1, 2)])
def test_replace_mode_is_the_mulan_forward(fusion_levels):
    torch.manual_seed(5)
    model = DenseNet25D(num_slice_groups=3, fusion_levels=fusion_levels, **TINY)
    model.init_weights()
    model.eval()
    x = torch.randn(2, 9, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x), _mulan_forward(model, x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize('train', [False, True])
def test_output_mode_at_one_level_equals_mulan_bit_for_bit(train):
    """Fusion at one (the last) level: M3DCF's 'output' mode is the current MULAN backbone,
    outputs and gradients bit for bit, in training mode (batch statistics) as in eval mode."""
    torch.manual_seed(3)
    mulan = DenseNet25D(num_slice_groups=3, fusion_levels=(2, ), **TINY)
    mulan.init_weights()
    m3dcf = DenseNet25D(num_slice_groups=3, fusion_levels=(2, ), fusion_mode='output', **TINY)
    m3dcf.load_state_dict(mulan.state_dict())  # same keys: checkpoints interchangeable
    mulan.train(train)
    m3dcf.train(train)
    x = torch.randn(2, 9, 32, 32)
    outs = []
    for model in (mulan, m3dcf):
        out = model(x)
        sum(o.square().sum() for o in out).backward()
        outs.append((out, [p.grad.clone() for p in model.parameters()]))
    (out_a, grad_a), (out_b, grad_b) = outs
    assert all(torch.equal(a, b) for a, b in zip(out_a, out_b))
    assert all(torch.equal(a, b) for a, b in zip(grad_a, grad_b))


def test_output_mode_fuses_every_level_from_per_slice_features():
    """'output' at levels 0, 1, 2: each level's output is the 1x1 fusion of the three groups'
    *unfused* features at that level (shapes per level), the other groups are the plain trunk's,
    and the trunk itself is not changed by the fusion."""
    torch.manual_seed(4)
    fused = DenseNet25D(num_slice_groups=3, fusion_levels=(0, 1, 2), fusion_mode='output',
                        **TINY)
    fused.init_weights()
    plain = DenseNet25D(num_slice_groups=3, fusion_levels=(), **TINY)
    plain.load_state_dict(fused.state_dict(), strict=False)
    fused.eval()
    plain.eval()
    x = torch.randn(2, 9, 36, 44)
    with torch.no_grad():
        out = fused(x)
        groups_fused = fused.forward_groups(x)
        groups = plain.forward_groups(x)
    # TINY channels 32 / 40 / 52 at strides 4 / 8 / 16 (floor through each stride-2 layer)
    assert [tuple(o.shape) for o in out] == [(2, 32, 9, 11), (2, 40, 4, 5), (2, 52, 2, 2)]
    for level in range(3):
        n, g, c, h, w = groups[level].shape
        conv = fused.fusion_convs[str(level)]
        expected = F.conv2d(groups[level].reshape(n, g * c, h, w), conv.weight, conv.bias)
        torch.testing.assert_close(out[level], expected, rtol=1e-5, atol=1e-5)
        for k in (0, 2):
            assert torch.equal(groups_fused[level][:, k], groups[level][:, k])
    # 'replace' differs from level 1 on: its trunk carries level 0's fused map
    replace = DenseNet25D(num_slice_groups=3, fusion_levels=(0, 1, 2), **TINY)
    replace.load_state_dict(fused.state_dict())
    replace.eval()
    with torch.no_grad():
        out_replace = replace(x)
    assert torch.equal(out_replace[0], out[0])
    assert (out_replace[1] - out[1]).abs().max() > 1e-3


def test_fusion_mode_check():
    with pytest.raises(ValueError, match="fusion_mode must be one of"):
        DenseNet25D(fusion_mode='side', **TINY)
