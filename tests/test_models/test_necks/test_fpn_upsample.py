import pytest
import torch

import mmlesion.models  # noqa: F401  (registers the components)
from mmdet.registry import MODELS
from mmlesion.models import LesionFPNUpsample


def test_output_shape_and_stride():
    neck = MODELS.build(
        dict(type='LesionFPNUpsample', in_channels=[256, 512, 1024],
             out_channels=64, feat_channels=96))
    neck.init_weights()
    # DenseNet25D levels of a 128 x 96 input: strides 4, 8, 16
    feats = (torch.randn(1, 256, 32, 24), torch.randn(1, 512, 16, 12),
             torch.randn(1, 1024, 8, 6))
    outs = neck(feats)
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (1, 64, 32, 24)  # stride 4
    # odd sizes (input 66 px: 17, 9, 5): upsampled to the finer map's size
    outs = neck((torch.randn(2, 256, 17, 17), torch.randn(2, 512, 9, 9),
                 torch.randn(2, 1024, 5, 5)))
    assert outs[0].shape == (2, 64, 17, 17)


def test_top_down_sum_by_hand():
    """Unit laterals and an identity 3x3 smoothing conv: the output is
    C0 + up2(C1 + up2(C2)) with nearest upsampling."""
    neck = LesionFPNUpsample(in_channels=[1, 1, 1], out_channels=1)
    with torch.no_grad():
        for conv_module in neck.lateral_convs:
            conv_module.conv.weight.fill_(1.0)
            conv_module.conv.bias.zero_()
        smooth = neck.fpn_convs[0].conv
        smooth.weight.zero_()
        smooth.weight[0, 0, 1, 1] = 1.0
        smooth.bias.zero_()
    c2 = torch.tensor([[[[1., 2.], [3., 4.]]]])
    c1 = torch.arange(16.).reshape(1, 1, 4, 4) * 10
    c0 = torch.full((1, 1, 8, 8), 100.)
    out = neck((c0, c1, c2))[0]
    p1 = c1 + c2.repeat_interleave(2, 2).repeat_interleave(2, 3)
    expected = c0 + p1.repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.equal(out, expected)
    # e.g. pixel (0, 7): 100 + 10 * 3 + 2
    assert out[0, 0, 0, 7].item() == 132.0


def test_level_count_and_cfg_checks():
    neck = LesionFPNUpsample(in_channels=[8, 16], out_channels=4)
    with pytest.raises(ValueError, match='expected 2 input levels'):
        neck((torch.randn(1, 8, 8, 8), ))
    with pytest.raises(ValueError, match='size/scale_factor'):
        LesionFPNUpsample(upsample_cfg=dict(mode='nearest', scale_factor=2))
