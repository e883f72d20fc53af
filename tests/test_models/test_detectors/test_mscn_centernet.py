"""A complete mmdet ``CenterNet`` with the MSCN components, built from a
config dict, on a 1 x 9 x 128 x 128 fake batch."""
import copy

import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmlesion.models  # noqa: F401  (registers the components)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmlesion.models import CenterNetHNSLHead, DenseNet25D, LesionFPNUpsample

# The MSCN model dict the configs are written from. mmengine's
# ImgDataPreprocessor accepts 1 or 3 mean/std values only: one value is
# broadcast to all 9 channels (MULAN's pixel mean 50 on the [0, 255] window).
MSCN_MODEL = dict(
    type='CenterNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[50.0],
        std=[50.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='DenseNet25D',
        num_slice_groups=3,
        in_channels_per_group=3,
        growth_rate=32,
        block_config=(6, 12, 24),
        bn_size=4,
        num_init_features=64,
        out_indices=(0, 1, 2),
        fusion_levels=(2, ),
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        with_cp=False,
        pretrained_torchvision=None),
    neck=dict(
        type='LesionFPNUpsample',
        in_channels=[256, 512, 1024],
        out_channels=64,
        feat_channels=128),
    bbox_head=dict(
        type='CenterNetHNSLHead',
        num_classes=1,
        in_channels=64,
        feat_channels=64,
        loss_center_heatmap=dict(
            type='GaussianFocalLoss', alpha=2.0, gamma=4.0, loss_weight=1.0),
        loss_wh=dict(type='L1Loss', loss_weight=0.1),
        loss_offset=dict(type='L1Loss', loss_weight=1.0),
        hard_negative_radius_rule='same'),
    train_cfg=None,
    test_cfg=dict(topk=100, local_maximum_kernel=3, max_per_img=100))


def _batch(size=128):
    meta = dict(img_shape=(size, size), ori_shape=(size, size),
                scale_factor=(1.0, 1.0), img_id=1)
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[30., 40., 70., 72.]])),
        labels=torch.tensor([0]))
    sample.gt_hard_negatives = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[80., 10., 110., 36.]])))
    # raw window values in [0, 255] (3 slice groups x 3 slices)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.rand(9, size, size, generator=g) * 255]
    return dict(inputs=inputs, data_samples=[sample])


def test_build_every_component_from_config():
    cfg = copy.deepcopy(MSCN_MODEL)
    assert isinstance(MODELS.build(cfg['backbone']), DenseNet25D)
    assert isinstance(MODELS.build(cfg['neck']), LesionFPNUpsample)
    assert isinstance(MODELS.build(cfg['bbox_head']), CenterNetHNSLHead)


def test_mscn_centernet_loss_and_predict():
    # configs set default_scope='mmdet'; the data preprocessor is built
    # through mmengine's registry and needs it to find DetDataPreprocessor
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(copy.deepcopy(MSCN_MODEL)))
    model.init_weights()
    assert isinstance(model.bbox_head, CenterNetHNSLHead)

    model.train()
    data = model.data_preprocessor(_batch(), training=True)
    assert data['inputs'].shape == (1, 9, 128, 128)
    # normalised by the broadcast mean/std 50
    raw = _batch()['inputs'][0]
    torch.testing.assert_close(data['inputs'][0], (raw - 50) / 50)
    feats = model.extract_feat(data['inputs'])
    assert len(feats) == 1 and feats[0].shape == (1, 64, 32, 32)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_center_heatmap', 'loss_wh', 'loss_offset'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.fusion_convs['2'].weight.grad.abs().sum() > 0

    # the hard negative changed the heatmap loss (and nothing else)
    no_hn = _batch()
    del no_hn['data_samples'][0].gt_hard_negatives
    data_no_hn = model.data_preprocessor(no_hn, training=True)
    model.eval()  # same BN statistics for both
    with torch.no_grad():
        a = model(**model.data_preprocessor(_batch(), True), mode='loss')
        b = model(**data_no_hn, mode='loss')
    assert a['loss_center_heatmap'] > b['loss_center_heatmap']
    assert torch.equal(a['loss_wh'], b['loss_wh'])

    with torch.no_grad():
        results = model(**model.data_preprocessor(_batch(), False),
                        mode='predict')
    pred = results[0].pred_instances
    assert pred.bboxes.shape == (100, 4)
    assert pred.scores.shape == (100, ) and pred.labels.shape == (100, )
    assert (pred.labels == 0).all()
    assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
