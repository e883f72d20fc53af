import pytest
import torch
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401  (registers the components)
from mmdet.registry import HOOKS, MODELS
from mmlesion.engine import MemoryFormatHook, to_memory_format
from mmlesion.models import DenseNet25D


def _conv_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


class _Runner:
    def __init__(self, model):
        self.model = model


def test_hook_converts_every_conv_weight_and_back(tiny_detector_cfg):
    init_default_scope('mmdet')
    model = MODELS.build(tiny_detector_cfg)
    hook = HOOKS.build(dict(type='MemoryFormatHook'))
    hook.before_run(_Runner(model))
    weights = _conv_weights(model)
    # a 1x1 conv over one channel is both layouts; every wider one must now be NHWC only
    nhwc_only = [w for w in weights if w.shape[1] > 1 and w.shape[2:] != (1, 1)]
    assert nhwc_only
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not any(w.is_contiguous() for w in nhwc_only)
    # before_run precedes every checkpoint load; loading a plain NCHW state keeps the layout
    plain = MODELS.build(tiny_detector_cfg).state_dict()
    model.load_state_dict(plain)
    assert not any(w.is_contiguous() for w in nhwc_only)
    torch.testing.assert_close(model.state_dict(), plain)
    MemoryFormatHook('contiguous').before_run(_Runner(model))
    assert all(w.is_contiguous() for w in _conv_weights(model))


def test_channels_last_backbone_computes_the_same_features():
    torch.manual_seed(0)
    model = DenseNet25D(num_slice_groups=3, growth_rate=8, block_config=(2, 3, 4), bn_size=2,
                        num_init_features=16).eval()
    x = torch.randn(2, 9, 48, 64)
    with torch.no_grad():
        ref = model(x)
        to_memory_format(model, 'channels_last')
        out = model(x)
    for r, o in zip(ref, out):
        assert o.shape == r.shape
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def test_channels_last_detector_predicts_the_same_boxes(tiny_detector_cfg):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg).eval()
    x = torch.randn(1, 9, 64, 64)
    with torch.no_grad():
        ref = model.bbox_head(model.neck(model.backbone(x)))
        to_memory_format(model, 'channels_last')
        out = model.bbox_head(model.neck(model.backbone(x)))
    for r_lvl, o_lvl in zip(ref, out):
        for r, o in zip(r_lvl, o_lvl):
            torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def test_unknown_memory_format_is_refused():
    with pytest.raises(ValueError, match='memory_format must be one of'):
        MemoryFormatHook('nhwc')
    with pytest.raises(ValueError, match='memory_format must be one of'):
        to_memory_format(torch.nn.Conv2d(3, 3, 3), 'channels_first')

