"""The M3DCF-style one-stage detector (configs/synthetic/m3dcf-*, docs/method.md#m3dcf): the
tiny DenseNet25D fused at every level ('output' mode), mmdet's FPN and ATSS head on 9-slice
inputs -- per-level shapes, a training step that reaches every fusion conv, a prediction."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(REPO, 'configs', 'synthetic',
                  'm3dcf-atss_densenet-tiny-9slice-fuse3_fpn_1xb8-cpu_synthetic.py')


def _model():
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    return model


def _samples(boxes_per_image, size=(96, 96)):
    samples = []
    for boxes in boxes_per_image:
        s = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                        scale_factor=(1.0, 1.0), batch_input_shape=size))
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        s.gt_instances = InstanceData(bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
        samples.append(s)
    return samples


def test_levels_and_shapes(one_torch_thread):
    model = _model()
    assert model.backbone.fusion_levels == (0, 1, 2)
    assert model.backbone.fusion_mode == 'output'
    x = torch.randn(2, 9, 96, 96)
    feats = model.extract_feat(x)
    # FPN outputs at strides 4, 8, 16 and the extra 32, 32 channels each
    assert [tuple(f.shape) for f in feats] == [(2, 32, 24, 24), (2, 32, 12, 12),
                                               (2, 32, 6, 6), (2, 32, 3, 3)]
    # the anchors of each level: 4 x its stride, one square per cell
    anchors = model.bbox_head.prior_generator.grid_priors(
        [f.shape[2:] for f in feats], device='cpu')
    sizes = [float((a[0, 2] - a[0, 0]).item()) for a in anchors]
    assert sizes == [16.0, 32.0, 64.0, 128.0]


def test_train_step_reaches_every_fusion_level_and_predicts(one_torch_thread):
    model = _model()
    model.train()
    x = torch.randn(2, 9, 96, 96)
    # one lesion in the first image, none in the second (empty ground truth)
    losses = model.loss(x, _samples([[[30.0, 40.0, 52.0, 60.0]], []]))
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness'}
    total = sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    for level in ('0', '1', '2'):
        grad = model.backbone.fusion_convs[level].weight.grad
        assert grad is not None and grad.abs().sum() > 0
    # without any lesion: only the classification term, no box term
    model.zero_grad()
    empty = model.loss(x, _samples([[], []]))
    assert float(sum(empty['loss_bbox']).detach()) == 0.0
    assert float(sum(empty['loss_cls']).detach()) > 0

    model.eval()
    with torch.no_grad():
        results = model.predict(x, _samples([[], []]))
    assert len(results) == 2
    for r in results:
        p = r.pred_instances
        assert p.bboxes.shape[1] == 4 and len(p.bboxes) <= 50
        assert (p.scores >= 0.05).all() and (p.labels == 0).all()
        assert (p.bboxes[:, 0] >= 0).all() and (p.bboxes[:, 2] <= 96).all()
