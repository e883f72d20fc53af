"""The lesion proposal classifiers: forward/backward on a tiny batch, predict scores, errors."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

import mmlesion  # noqa: F401
from mmdet.registry import MODELS

TINY_RESNET = dict(type='ResNet', depth=18, in_channels=1, base_channels=4, out_indices=(3, ),
                   norm_eval=False)
CASES = {
    'multiview': (dict(type='MultiViewLPC', backbone=TINY_RESNET), (3, 1, 32, 32)),
    'multiview-shared': (dict(type='MultiViewLPC', backbone=TINY_RESNET, share_backbone=True),
                         (3, 1, 32, 32)),
    # an ImageNet-layout (3-channel) trunk on one-channel patches: the channel is repeated
    'axial': (dict(type='AxialLPC', backbone=dict(TINY_RESNET, in_channels=3)), (1, 1, 32, 32)),
    '3d': (dict(type='LPC3D', backbone=dict(type='ResNet3D', base_channels=4)), (1, 16, 16, 16)),
}



pytestmark = pytest.mark.usefixtures('one_torch_thread')

def batch(shape, labels):
    torch.manual_seed(0)
    inputs = [torch.rand(shape) * 255 for _ in labels]
    samples = [BaseDataElement(metainfo=dict(key='k', index=i), gt_label=torch.tensor(float(y)))
               for i, y in enumerate(labels)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('name', list(CASES))
def test_forward_backward_predict(name):
    init_default_scope('mmdet')
    cfg, shape = CASES[name]
    model = MODELS.build(dict(cfg, data_preprocessor=dict(type='LPCDataPreprocessor',
                                                          mean=128.0, std=64.0)))
    data = model.data_preprocessor(batch(shape, [1, 0, 1, 0]), True)
    assert data['inputs'].shape == (4, *shape)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls'} and losses['loss_cls'].ndim == 0
    losses['loss_cls'].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        logits = model(data['inputs'], mode='tensor')
        out = model(**data, mode='predict')
    assert logits.shape == (4, )
    for ds, logit in zip(out, logits):
        assert 0.0 <= float(ds.pred_score) <= 1.0
        assert float(ds.pred_score) == pytest.approx(torch.sigmoid(logit).item(), abs=1e-6)
        assert ds.metainfo['key'] == 'k'


def test_loss_is_bce_with_logits():
    init_default_scope('mmdet')
    model = MODELS.build(CASES['axial'][0]).eval()
    data = model.data_preprocessor(batch((1, 1, 32, 32), [1, 0]), False)
    logits = model(data['inputs'], mode='tensor')
    expect = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([1., 0.]))
    assert model(**data, mode='loss')['loss_cls'].item() == pytest.approx(expect.item(), rel=1e-5)


def test_per_view_trunks_are_separate_and_views_checked():
    init_default_scope('mmdet')
    per_view = MODELS.build(CASES['multiview'][0])
    shared = MODELS.build(CASES['multiview-shared'][0])
    assert len(per_view.backbones) == 3 and len(shared.backbones) == 1
    assert per_view.fc.in_features == 3 * per_view.backbones[0].feat_dim
    assert shared.fc.in_features == per_view.fc.in_features
    with pytest.raises(ValueError, match='one per view'):
        per_view(torch.zeros(2, 1, 1, 32, 32))
    with pytest.raises(ValueError, match="mode 'cube'"):
        MODELS.build(CASES['3d'][0])(torch.zeros(2, 16, 16, 16))


def test_unknown_labels_must_not_reach_the_loss():
    init_default_scope('mmdet')
    model = MODELS.build(CASES['axial'][0])
    data = model.data_preprocessor(batch((1, 1, 32, 32), [1, -1]), True)
    with pytest.raises(ValueError, match='drop_unknown'):
        model(**data, mode='loss')


def test_resnet3d_layout_and_preprocessor_channels():
    init_default_scope('mmdet')
    net = MODELS.build(dict(type='ResNet3D', depth=18, base_channels=8))
    assert [len(layer) for layer in net.layers] == [2, 2, 2, 2]
    (feat, ) = net.eval()(torch.zeros(1, 1, 32, 32, 32))
    assert feat.shape == (1, 64, 1, 1, 1) and net.feat_dim == 64  # /2 stem, /2 pool, /8 stages
    with pytest.raises(KeyError, match='depth'):
        MODELS.build(dict(type='ResNet3D', depth=50))
    pre = MODELS.build(dict(type='LPCDataPreprocessor', mean=[1.0, 2.0, 3.0], std=[1, 1, 2]))
    out = pre(dict(inputs=[torch.full((2, 3, 4, 4), 5.0)], data_samples=None))['inputs']
    assert out[0, :, :, 0, 0].tolist() == [[4.0, 3.0, 1.0]] * 2  # per channel, dim 2 of views
    with pytest.raises(ValueError, match='one shape'):
        pre(dict(inputs=[torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 5, 5)]))
