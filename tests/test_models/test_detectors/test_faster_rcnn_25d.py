"""Faster R-CNN 2.5D (mmdet's FasterRCNN on DenseNet25D) from every config of ours: it builds,
takes a training step and predicts on synthetic 9-slice inputs, and the volume scan turns its
slice detections into tracklets that the P3D metric scores (as MSCN's)."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401  (registers the components)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SYNTHETIC = sorted(glob.glob(osp.join(REPO, 'configs', 'synthetic', 'faster-rcnn*.py')))
DEEPLESION = sorted(glob.glob(osp.join(REPO, 'configs', 'faster_rcnn', '*.py')))
STRATEGY_SAMPLERS = {'faster-rcnn_': 'RandomSampler', 'faster-rcnn-obhs_': 'RandomSampler',
                     'faster-rcnn-mobhs_': 'OverlapBandWeightSampler',
                     'faster-rcnn-obss_': 'OverlapSoftSampler'}


def _batch(size=128, boxes=((30.0, 40.0, 62.0, 70.0), (80.0, 20.0, 100.0, 44.0))):
    """Two 9 x size x size slices (raw [0, 255] window values) with lesion boxes (px)."""
    torch.manual_seed(0)
    inputs, samples = [], []
    for i in range(2):
        img = torch.full((9, size, size), 60.0)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                             batch_input_shape=(size, size)))
        box = torch.tensor([boxes[i]])
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        img[:, y1:y2, x1:x2] = 140.0  # a bright lesion on all slices
        inputs.append((img + 5 * torch.randn_like(img)).clamp(0, 255))
        sample.gt_instances = InstanceData(bboxes=box, labels=torch.zeros(1, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _strategy(path):
    name = osp.basename(path)
    return next(v for k, v in STRATEGY_SAMPLERS.items() if name.startswith(k))


def test_every_strategy_has_both_configs():
    names = sorted(osp.basename(p).split('_')[0] for p in SYNTHETIC)
    assert names == sorted(osp.basename(p).split('_')[0] for p in DEEPLESION) == \
        ['faster-rcnn', 'faster-rcnn-mobhs', 'faster-rcnn-obhs', 'faster-rcnn-obss']


@pytest.mark.parametrize('path', SYNTHETIC + DEEPLESION, ids=lambda p: osp.relpath(p, REPO))
def test_config_selects_its_strategy(path):
    cfg = Config.fromfile(path)
    rcnn = cfg.model.train_cfg.rcnn
    assert rcnn.sampler.type == _strategy(path)
    assert cfg.model.roi_head.bbox_head.type == 'NegativeWeightedBBoxHead'
    assert cfg.train_dataloader.dataset.drop_hard_negatives is True
    # OBHS: a (low, high) tuple makes mmdet's assigner ignore background below 0.1; a list would
    # silently make no negatives at all
    neg = rcnn.assigner.neg_iou_thr
    if 'obhs_' in osp.basename(path) and 'mobhs' not in osp.basename(path):
        assert isinstance(neg, tuple) and neg == (0.1, 0.5)
    else:
        assert neg == 0.5
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0]['type'] == 'LoadMultiSliceFromFile' and pipeline[0]['num_slices'] == 9


@pytest.mark.parametrize('path', SYNTHETIC, ids=lambda p: osp.relpath(p, REPO))
def test_synthetic_config_trains_a_step_and_predicts(path, one_torch_thread):
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.roi_head.bbox_head.num_classes == 1
    assert model.backbone.num_slice_groups == 3 and model.backbone.fusion_levels == (2, )
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    data = model.data_preprocessor(_batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'acc'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    optim.zero_grad()
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    optim.step()
    model.eval()
    with torch.no_grad():
        out = model.test_step(_batch())
    for sample in out:
        pred = sample.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.bboxes)
        assert (pred.labels == 0).all()  # one class: lesion
        assert pred.bboxes.min() >= 0 and pred.bboxes.max() <= 128


@pytest.mark.parametrize('path', DEEPLESION, ids=lambda p: osp.relpath(p, REPO))
def test_paper_sized_config_trains_a_step_and_predicts(path, one_torch_thread):
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert cfg.model.backbone.block_config == (6, 12, 24)
    assert cfg.model.neck.in_channels == [256, 512, 1024]
    model.train()
    data = model.data_preprocessor(_batch(), True)
    total, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
    total.backward()
    assert torch.isfinite(total)
    if _strategy(path) != 'RandomSampler':
        return  # the strategies change training only: one prediction covers the paper size
    model.eval()
    with torch.no_grad():
        out = model.test_step(_batch())
    assert all(s.pred_instances.bboxes.shape[1] == 4 for s in out)


def test_volume_scan_stacks_faster_rcnn_detections_and_p3d_scores_them(
        synthetic_converted, tmp_path, volume_scan_config, complete_gt_pickle, one_torch_thread):
    """The scan (the path of ``tools/test.py --eval p3d``) runs Faster R-CNN unchanged: slice
    detections in the original frame, stacked into tracklets inside the image, scored by P3D."""
    cfg = Config.fromfile(SYNTHETIC[[_strategy(p) for p in SYNTHETIC].index('RandomSampler')])
    model = copy.deepcopy(cfg.model.to_dict())
    # an untrained RoI head scores about 0.5 everywhere: keep the 5 best per slice
    model['test_cfg']['rcnn']['max_per_img'] = 5
    ann, keys = complete_gt_pickle
    init_default_scope('mmdet')
    torch.manual_seed(0)
    runner = Runner.from_cfg(Config(volume_scan_config(
        synthetic_converted, tmp_path / 'work', model, dict(type='P3DMetric'), ann_file=ann,
        volumes=keys[:2], score_thr=0.1)))
    loop = runner.build_test_loop(runner._test_loop)
    runner.model.eval()
    item = loop.inputs[0]
    pred = loop.scan_item(item)
    assert len(pred.slice_dets) == len(item['slices']) > 0
    assert sum(len(d) for d in pred.slice_dets.values()) > 0
    assert pred.tracklets
    w, h = item['image_size']
    for trk in pred.tracklets:
        assert trk.boxes[:, [0, 2]].min() >= 0 and trk.boxes[:, [0, 2]].max() <= w
        assert trk.boxes[:, [1, 3]].min() >= 0 and trk.boxes[:, [1, 3]].max() <= h
    metrics = runner.test()
    for key in ('p3d/AP', 'p3d/sens@1', 'p3d/sens@8'):
        assert 0.0 <= metrics[key] <= 1.0
